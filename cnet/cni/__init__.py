"""cnet as a CNI plugin: the protocol (pure), the conflist and the installed executable."""
