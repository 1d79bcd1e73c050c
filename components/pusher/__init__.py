"""Pusher executor for TF Serving: atomic, never the same model twice."""
