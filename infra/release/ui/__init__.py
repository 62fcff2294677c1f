"""`dockyard ui`: a read-only delivery dashboard (pipeline, history, branch previews, delivery metrics).

The page is built from the same stores and engine outputs as `status` and `history`, through the
allow-listed views in `model`; nothing else of the project's configuration reaches it.
"""
