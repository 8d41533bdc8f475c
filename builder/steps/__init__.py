"""One module per kind of build step: ``meta`` (config edits), ``copy`` (COPY/ADD into a fresh layer
directory), ``run`` (RUN in the runner's sandbox over an overlay)."""
