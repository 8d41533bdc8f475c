FROM busybox
HEALTHCHECK --interval=5x CMD true
