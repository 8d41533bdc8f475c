"""Kubernetes manifests for builds in a cluster: ``pybuild kube build-job``.

* :mod:`.model`: frozen types of the ``batch/v1`` Job fields pybuild emits; :func:`to_yaml` renders one.
* :mod:`.buildjob`: :class:`BuildJobOptions` -> :func:`build_job` -> a :class:`Job` that runs the
  pybuild image on a stdin or git context and pushes the result.
"""

from .buildjob import AUTH_DIR, USER_ID, WORK_DIR, BuildJobOptions, build_job, parse_quantity
from .model import Job, to_manifest, to_yaml

__all__ = ["AUTH_DIR", "USER_ID", "WORK_DIR", "BuildJobOptions", "Job", "build_job", "parse_quantity", "to_manifest",
           "to_yaml"]
