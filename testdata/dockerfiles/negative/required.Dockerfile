FROM busybox
ENV X=${Y:?must be set}
