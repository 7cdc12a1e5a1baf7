// The sandbox ("pause") image's program: holds a pod's namespaces open, nothing else.
module lifeguard.dev/tools/pause

go 1.26.0
