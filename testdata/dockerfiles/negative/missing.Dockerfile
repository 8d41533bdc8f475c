FROM busybox
COPY missing.txt /
