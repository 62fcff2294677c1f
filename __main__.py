"""dockyard: run the registry stack or an app stack, as `dockyard:role` says."""

from dockyard.program import main

main()
