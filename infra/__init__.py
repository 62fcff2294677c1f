"""dockyard: build images once, deploy them by digest everywhere."""
