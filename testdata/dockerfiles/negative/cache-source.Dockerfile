FROM busybox
RUN --mount=type=cache,target=/c,source=sub ls /c
