FROM busybox
CMD ["echo", "hi"
