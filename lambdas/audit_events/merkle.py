"""RFC 9162 (Certificate Transparency v2) Merkle tree hashing and proofs (stdlib only).

The audit log's checkpoints commit to the Merkle tree over every sealed record hash, in the
order the records were sealed (docs/INTEGRITY.md). Hashes are SHA-256; a leaf is hashed with a
``0x00`` prefix and an interior node with ``0x01`` (RFC 9162 §2.1.1), so a leaf can never pass
for a node. Proofs follow RFC 9162 §2.1.3 (inclusion) and §2.1.4 (consistency); the verifiers
are the RFC's iterative algorithms, the generators its recursive definitions. Every function is
pure: the sealer, ``audit verify`` and ``audit verify-proof`` only call them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "Frontier",
    "consistency_proof",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "root_from_inclusion_proof",
    "root_hash",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()
"""The root of the empty tree: SHA-256 of nothing (RFC 9162 §2.1.1)."""


def leaf_hash(data: bytes) -> bytes:
    """``SHA-256(0x00 || data)``: the hash of one leaf."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """``SHA-256(0x01 || left || right)``: the hash of an interior node."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(size: int) -> int:
    """The largest power of two smaller than ``size`` (``size`` > 1): where RFC 9162 splits."""
    return 1 << ((size - 1).bit_length() - 1)


def root_hash(leaves: Sequence[bytes]) -> bytes:
    """MTH: the root of the tree whose leaf hashes are ``leaves``, left to right."""
    return _subtree_root(leaves) if leaves else EMPTY_ROOT


def _subtree_root(leaves: Sequence[bytes]) -> bytes:
    if len(leaves) == 1:
        return leaves[0]
    k = _split(len(leaves))
    return node_hash(_subtree_root(leaves[:k]), _subtree_root(leaves[k:]))


def inclusion_proof(leaves: Sequence[bytes], index: int) -> list[bytes]:
    """PATH(index, leaves): the audit path proving leaf ``index`` is in the tree of ``leaves``."""
    if not 0 <= index < len(leaves):
        raise ValueError(f"leaf index {index} is outside a tree of {len(leaves)} leaves")
    return _path(index, leaves)


def _path(index: int, leaves: Sequence[bytes]) -> list[bytes]:
    if len(leaves) == 1:
        return []
    k = _split(len(leaves))
    if index < k:
        return [*_path(index, leaves[:k]), _subtree_root(leaves[k:])]
    return [*_path(index - k, leaves[k:]), _subtree_root(leaves[:k])]


def root_from_inclusion_proof(
    index: int, size: int, leaf: bytes, proof: Sequence[bytes]
) -> bytes | None:
    """The root an audit path leads to (RFC 9162 §2.1.3.2); None if the path cannot be one."""
    if not 0 <= index < size or any(len(node) != HASH_SIZE for node in proof):
        return None
    fn, sn, result = index, size - 1, leaf
    for node in proof:
        if sn == 0:
            return None
        if fn & 1 or fn == sn:
            result = node_hash(node, result)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            result = node_hash(result, node)
        fn >>= 1
        sn >>= 1
    return result if sn == 0 else None


def verify_inclusion(
    index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes
) -> bool:
    """Whether ``proof`` shows leaf hash ``leaf`` at ``index`` in the tree of ``size`` and
    ``root``."""
    return root_from_inclusion_proof(index, size, leaf, proof) == root


def consistency_proof(leaves: Sequence[bytes], old_size: int) -> list[bytes]:
    """PROOF(old_size, leaves): shows the tree of ``leaves`` extends its first ``old_size``."""
    if not 0 <= old_size <= len(leaves):
        raise ValueError(f"old size {old_size} is outside a tree of {len(leaves)} leaves")
    if old_size in (0, len(leaves)):
        return []
    return _subproof(old_size, leaves, complete=True)


def _subproof(old_size: int, leaves: Sequence[bytes], *, complete: bool) -> list[bytes]:
    if old_size == len(leaves):
        return [] if complete else [_subtree_root(leaves)]
    k = _split(len(leaves))
    if old_size <= k:
        return [*_subproof(old_size, leaves[:k], complete=complete), _subtree_root(leaves[k:])]
    return [
        *_subproof(old_size - k, leaves[k:], complete=False),
        _subtree_root(leaves[:k]),
    ]


def verify_consistency(
    old_size: int,
    new_size: int,
    old_root: bytes,
    new_root: bytes,
    proof: Sequence[bytes],
) -> bool:
    """Whether ``proof`` shows the tree (``new_size``, ``new_root``) extends the tree
    (``old_size``, ``old_root``) (RFC 9162 §2.1.4.2)."""
    if not 0 <= old_size <= new_size or any(len(node) != HASH_SIZE for node in proof):
        return False
    if old_size == new_size:
        return not proof and old_root == new_root
    if old_size == 0:
        return not proof  # the empty tree is a prefix of every tree
    if not proof:
        return False
    path = list(proof)
    if old_size & (old_size - 1) == 0:  # an exact power of two: the old root is a node
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    first = second = path[0]
    for node in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            first = node_hash(node, first)
            second = node_hash(node, second)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            second = node_hash(second, node)
        fn >>= 1
        sn >>= 1
    return sn == 0 and first == old_root and second == new_root


class Frontier:
    """The roots of the perfect subtrees of a growing tree, left to right (a "compact range").

    Enough to append leaves and compute the root without the earlier leaves: the sealer keeps
    it in each digest, so sealing never reads the whole log.
    """

    def __init__(self, size: int = 0, nodes: Sequence[bytes] = ()) -> None:
        if len(nodes) != size.bit_count() or any(len(node) != HASH_SIZE for node in nodes):
            raise ValueError(f"{len(nodes)} frontier hashes cannot describe a tree of {size}")
        self.size = size
        self.nodes = list(nodes)

    def append(self, leaf: bytes) -> None:
        node, size = leaf, self.size
        while size & 1:
            node = node_hash(self.nodes.pop(), node)
            size >>= 1
        self.nodes.append(node)
        self.size += 1

    def root(self) -> bytes:
        if not self.nodes:
            return EMPTY_ROOT
        result = self.nodes[-1]
        for node in reversed(self.nodes[:-1]):
            result = node_hash(node, result)
        return result
