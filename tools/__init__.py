"""Maintainers' tools, outside the learner's package (``course_lib``): run from the repository root as
``python -m tools.<name>``; ``pip install`` of the kit does not install them.

- ``labcheck``: ``make check-lab``, every notebook run, saved and reopened in JupyterLab in headless Chromium.
"""
