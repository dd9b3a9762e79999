"""Shared plumbing of the inference objects: the serialization front-end
:class:`~anatile.config.base.InitFieldsMixin` (defined with the one serialization system in
:mod:`anatile.config.base`, re-exported here). The argument checks live in
:mod:`anatile.checks` (re-exported here for older imports).
"""

from __future__ import annotations

from anatile.checks import check_float_list, check_non_negative, check_positive
from anatile.config.base import InitFieldsMixin

__all__ = ["InitFieldsMixin", "check_float_list", "check_non_negative", "check_positive"]
