"""Scanning many clips: one engine (:mod:`core.scan.engine`), two backends.

A scan takes a folder, a list file or an archive of clips (:mod:`core.scan.sources`), identifies
every clip by its sha256 so that a clip is analysed once however often it appears or however often
the scan is restarted, and writes each result into the RESULTS folder (:mod:`core.scan.results`)
as it finishes. The clips are analysed by a pool of worker processes on this computer
(:mod:`core.scan.local`) or by an actor pool on a Ray cluster (:mod:`core.scan.ray_backend`); each
worker loads the detectors once (:mod:`core.scan.worker`). The command line (``python -m core
scan``), ``evaluate`` and the Compare and Scan pages all go through :func:`core.scan.engine.run_scan`.
"""
