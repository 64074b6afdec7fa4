"""The Kubernetes cluster's shape, owned here and nowhere else: the pod profiles (`profiles.py`), what they need
of Minikube's nodes and Docker (`sizing.py`), why a pod stays Pending (`pending.py`), the head pod's Ray run
(`head_run.py`), the manifests made from them (`manifests.py`) and the files the checkout keeps of those
(`generated.py`). `python3 -m training.cluster --help` lists the commands bash uses.

Standard library only, like training/core/settings.py: the Kubernetes scripts run it with the system python3
before any virtualenv exists.
"""
