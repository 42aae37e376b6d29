"""Line numbers for key paths of a YAML document, so validation errors can name the line."""

from __future__ import annotations

from typing import Any

import yaml


def line_index(node: yaml.Node | None, prefix: tuple[Any, ...] = ()) -> dict[tuple[Any, ...], int]:
    """Map every key path in a composed YAML document to its 1-based line."""
    if node is None:
        return {}
    index: dict[tuple[Any, ...], int] = {prefix: node.start_mark.line + 1}
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            path = (*prefix, key_node.value)
            index.update(line_index(value_node, path))
            index[path] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            index.update(line_index(item, (*prefix, i)))
    return index


def nearest_line(index: dict[tuple[Any, ...], int], loc: tuple[Any, ...]) -> int | None:
    """The line of `loc`, or of its closest ancestor present in the document (a missing key
    or a validator's extra path entry points at the mapping that should hold it)."""
    candidate = tuple(p if isinstance(p, int) else str(p) for p in loc)
    while candidate:
        if candidate in index:
            return index[candidate]
        candidate = candidate[:-1]
    return index.get(())


def duplicate_keys(
    node: yaml.Node | None, prefix: tuple[Any, ...] = ()
) -> list[tuple[str, int, int]]:
    """Keys given twice in one mapping, as (key path, first line, repeated line). YAML loaders
    keep the last silently (`steps: 10` then `steps: 99999` would train 99999 steps)."""
    found: list[tuple[str, int, int]] = []
    if isinstance(node, yaml.MappingNode):
        first: dict[Any, int] = {}
        for key_node, value_node in node.value:
            key, line = key_node.value, key_node.start_mark.line + 1
            path = (*prefix, key)
            if key in first and key != "<<":
                found.append((".".join(map(str, path)), first[key], line))
            first.setdefault(key, line)
            found += duplicate_keys(value_node, path)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            found += duplicate_keys(item, (*prefix, i))
    return found
