"""The service-phrasing standard: policy, checker and the guard on every message."""
