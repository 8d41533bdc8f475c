import six
print("python app ok, six", six.__version__)
