FROM busybox
EXPOSE 80/tcpx
