"""The domains' command-line groups (``miaodai credit …``, ``miaodai loan …``, ``miaodai payments …``): entry
points, so they build the container and hand each service its domain's port; ``miaodai.cli`` mounts them."""
