"""dockyard: run the registry stack or an app stack, as `dockyard:role` says."""

from infra.program import main

main()
