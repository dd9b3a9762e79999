"""Inline code that names an API object links to its documentation (Sphinx extension).

The narrative pages write API names as inline code — ``TileWithPeriphery``,
``drift_weights(t)``, ``IOParameters.out_noise``, ``torch.nn.Module``. After the build has
read every page (so every documented object is known), this extension turns each such
literal outside the API reference into a link when it names exactly one object:

* an anatile class, function or method by its full name, by its last parts
  (``InferenceTile.drift_weights``) or by its short name when that is unique (``Name``,
  ``name()``, ``name(args)``); attributes and config fields only by a dotted name
  (``IOParameters.out_noise``), since a bare ``seed`` or ``alpha`` means many things;
* another project's object by its full dotted name (``torch.nn.Module``,
  ``numpy.ndarray``), through the intersphinx inventories.

Ambiguous or unknown names stay plain code.
"""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Any

from docutils import nodes
from sphinx import addnodes

_CALL = re.compile(r"^([A-Za-z_][\w.]*)(\(.*\))?$")
_LINKED_TYPES = {"class", "function", "method", "exception", "module", "property"}
_SKIP_PARENTS = (nodes.reference, addnodes.pending_xref, nodes.literal_block, nodes.title,
                 addnodes.desc_signature)


def _index(env: Any) -> dict[str, list[tuple[str, Any]]]:
    """Suffix -> [(full name, object entry)] over the documented anatile objects."""
    cached = getattr(env, "_anatile_autolink_index", None)
    if cached is not None:
        return cached
    index: dict[str, list[tuple[str, Any]]] = defaultdict(list)
    for name, obj in env.get_domain("py").objects.items():
        if not name.startswith("anatile.") or obj.aliased:
            continue
        parts = name.split(".")
        for k in range(1, len(parts)):
            suffix = ".".join(parts[k:])
            if k == len(parts) - 1 and obj.objtype not in _LINKED_TYPES:
                continue  # a bare attribute name is too ambiguous
            index[suffix].append((name, obj))
    env._anatile_autolink_index = index
    return index


def _lookup(env: Any, target: str) -> tuple[str, Any] | None:
    candidates = _index(env).get(target, [])
    unique = {(obj.docname, obj.node_id): (name, obj) for name, obj in candidates}
    if len(unique) == 1:
        return next(iter(unique.values()))
    # a name re-exported by its package and documented once per module: prefer the shortest
    public = [(n, o) for n, o in candidates if "._" not in n]
    if public and len({(o.docname, o.node_id) for _, o in public}) == 1:
        return public[0]
    return None


def _external(env: Any, target: str) -> tuple[str, str] | None:
    inventory = getattr(env, "intersphinx_inventory", {})
    for role in ("py:class", "py:function", "py:method", "py:module", "py:data",
                 "py:exception"):
        entry = inventory.get(role, {}).get(target)
        if entry is not None:
            return getattr(entry, "uri", None) or entry[2], target
    return None


def _link(app: Any, doctree: Any, docname: str) -> None:
    if docname.startswith("api/"):
        return
    env = app.builder.env
    for literal in list(doctree.findall(nodes.literal)):
        if any(isinstance(p, _SKIP_PARENTS) for p in _ancestors(literal)):
            continue
        text = literal.astext()
        match = _CALL.match(text)
        if match is None:
            continue
        target = match.group(1)
        found = _lookup(env, target)
        if found is not None:
            _, obj = found
            uri = app.builder.get_relative_uri(docname, obj.docname) + "#" + obj.node_id
        elif "." in target and (ext := _external(env, target)) is not None:
            uri = ext[0]
        else:
            continue
        ref = nodes.reference("", "", internal=found is not None, refuri=uri,
                              classes=["anatile-autolink"])
        literal.replace_self(ref)
        ref.append(literal)


def _ancestors(node: Any) -> list[Any]:
    out = []
    parent = node.parent
    while parent is not None:
        out.append(parent)
        parent = parent.parent
    return out


def setup(app: Any) -> dict[str, Any]:
    app.connect("doctree-resolved", _link)
    return {"parallel_read_safe": True, "parallel_write_safe": False}
