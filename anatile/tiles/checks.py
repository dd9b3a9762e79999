"""Deprecated location of the shared argument checks: use :mod:`anatile.checks`."""

from anatile.checks import check_float, check_int, check_tensor

__all__ = ["check_float", "check_int", "check_tensor"]
