"""`dockyard init`: what a team's repository already says about its services, and the project files made from it."""
