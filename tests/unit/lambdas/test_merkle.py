"""RFC 9162 Merkle tree hashing and proofs: published known answers, then properties."""

from __future__ import annotations

import hashlib

from hypothesis import given
from hypothesis import strategies as st

from audit_events import merkle

# Known answers typed in as data, NOT computed with the functions under test. Source: the
# RFC 6962 reference tree used by Certificate Transparency and Trillian, as published in
# github.com/transparency-dev/merkle, testonly/constants.go (LeafInputs, RootHashes) and
# proof/verify_test.go (inclusionProofs, consistencyProofs; leaf numbers there are 1-based).
REFERENCE_LEAF_INPUTS = [
    bytes.fromhex(text)
    for text in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]
REFERENCE_ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
# (leaf index, 0-based; tree size; audit path)
REFERENCE_INCLUSION_PROOFS = [
    (0, 1, []),
    (
        0,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        5,
        8,
        [
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (
        1,
        5,
        [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
]
# (old size, new size, consistency proof)
REFERENCE_CONSISTENCY_PROOFS = [
    (1, 1, []),
    (
        1,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        [
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
    (
        6,
        7,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
]

REFERENCE_LEAVES = [merkle.leaf_hash(data) for data in REFERENCE_LEAF_INPUTS]


def _hex(nodes: list[bytes]) -> list[str]:
    return [node.hex() for node in nodes]


def test_the_root_of_every_prefix_of_the_reference_tree_is_the_published_one() -> None:
    for size, expected in enumerate(REFERENCE_ROOTS):
        assert merkle.root_hash(REFERENCE_LEAVES[:size]).hex() == expected, size


def test_leaves_and_nodes_are_hashed_with_the_rfc_prefixes() -> None:
    assert merkle.leaf_hash(b"") == hashlib.sha256(b"\x00").digest()
    assert merkle.leaf_hash(b"").hex() == REFERENCE_ROOTS[1]
    assert merkle.node_hash(REFERENCE_LEAVES[0], REFERENCE_LEAVES[1]).hex() == REFERENCE_ROOTS[2]


def test_the_frontier_gives_the_published_root_at_every_size_and_can_be_resumed() -> None:
    frontier = merkle.Frontier()
    for size, leaf in enumerate(REFERENCE_LEAVES, start=1):
        frontier.append(leaf)
        resumed = merkle.Frontier(frontier.size, frontier.nodes)
        assert frontier.root().hex() == REFERENCE_ROOTS[size]
        assert resumed.root().hex() == REFERENCE_ROOTS[size]


def test_a_frontier_with_the_wrong_number_of_hashes_is_refused() -> None:
    try:
        merkle.Frontier(3, [REFERENCE_LEAVES[0]])
    except ValueError as error:
        assert "tree of 3" in str(error)
    else:
        raise AssertionError("a frontier of 1 hash for 3 leaves was accepted")


def test_inclusion_proofs_are_the_published_ones_and_verify() -> None:
    for index, size, expected in REFERENCE_INCLUSION_PROOFS:
        proof = merkle.inclusion_proof(REFERENCE_LEAVES[:size], index)
        assert _hex(proof) == expected, (index, size)
        root = bytes.fromhex(REFERENCE_ROOTS[size])
        published = [bytes.fromhex(node) for node in expected]
        assert merkle.verify_inclusion(index, size, REFERENCE_LEAVES[index], published, root)


def test_consistency_proofs_are_the_published_ones_and_verify() -> None:
    for old_size, new_size, expected in REFERENCE_CONSISTENCY_PROOFS:
        proof = merkle.consistency_proof(REFERENCE_LEAVES[:new_size], old_size)
        assert _hex(proof) == expected, (old_size, new_size)
        assert merkle.verify_consistency(
            old_size,
            new_size,
            bytes.fromhex(REFERENCE_ROOTS[old_size]),
            bytes.fromhex(REFERENCE_ROOTS[new_size]),
            [bytes.fromhex(node) for node in expected],
        )


def test_a_published_inclusion_proof_fails_for_another_index_size_leaf_or_root() -> None:
    index, size, expected = REFERENCE_INCLUSION_PROOFS[2]
    proof = [bytes.fromhex(node) for node in expected]
    root = bytes.fromhex(REFERENCE_ROOTS[size])
    leaf = REFERENCE_LEAVES[index]
    assert not merkle.verify_inclusion(index - 1, size, leaf, proof, root)
    assert not merkle.verify_inclusion(index + 1, size, leaf, proof, root)
    assert not merkle.verify_inclusion(index, size * 2, leaf, proof, root)
    assert not merkle.verify_inclusion(index, size // 2, leaf, proof, root)
    assert not merkle.verify_inclusion(index, size, REFERENCE_LEAVES[0], proof, root)
    assert not merkle.verify_inclusion(index, size, leaf, proof, merkle.EMPTY_ROOT)
    assert not merkle.verify_inclusion(index, size, leaf, [*proof, root], root)
    assert not merkle.verify_inclusion(index, size, leaf, proof[:-1], root)
    assert not merkle.verify_inclusion(index, size, leaf, [b"short", *proof[1:]], root)


def test_a_published_consistency_proof_fails_for_other_sizes_or_swapped_roots() -> None:
    old_size, new_size, expected = REFERENCE_CONSISTENCY_PROOFS[2]
    proof = [bytes.fromhex(node) for node in expected]
    old_root = bytes.fromhex(REFERENCE_ROOTS[old_size])
    new_root = bytes.fromhex(REFERENCE_ROOTS[new_size])
    assert merkle.verify_consistency(old_size, new_size, old_root, new_root, proof)
    assert not merkle.verify_consistency(old_size - 1, new_size, old_root, new_root, proof)
    assert not merkle.verify_consistency(old_size + 1, new_size, old_root, new_root, proof)
    assert not merkle.verify_consistency(old_size, new_size * 2, old_root, new_root, proof)
    assert not merkle.verify_consistency(old_size, new_size, new_root, old_root, proof)
    assert not merkle.verify_consistency(old_size, new_size, old_root, new_root, [])
    assert not merkle.verify_consistency(old_size, new_size, old_root, new_root, proof[:-1])
    assert not merkle.verify_consistency(new_size, old_size, new_root, old_root, proof)


def test_equal_and_empty_trees_are_consistent_only_with_an_empty_proof() -> None:
    root = bytes.fromhex(REFERENCE_ROOTS[3])
    assert merkle.verify_consistency(3, 3, root, root, [])
    assert not merkle.verify_consistency(3, 3, root, merkle.EMPTY_ROOT, [])
    assert not merkle.verify_consistency(3, 3, root, root, [root])
    assert merkle.verify_consistency(0, 3, merkle.EMPTY_ROOT, root, [])


# -- properties ----------------------------------------------------------------------------

_leaves = st.lists(st.binary(min_size=32, max_size=32), min_size=1, max_size=70).map(
    lambda data: [merkle.leaf_hash(item) for item in data]
)


@given(leaves=_leaves, data=st.data())
def test_every_generated_inclusion_proof_verifies_and_a_changed_leaf_or_path_fails(
    leaves: list[bytes], data: st.DataObject
) -> None:
    index = data.draw(st.integers(0, len(leaves) - 1))
    root = merkle.root_hash(leaves)
    proof = merkle.inclusion_proof(leaves, index)
    assert merkle.verify_inclusion(index, len(leaves), leaves[index], proof, root)
    changed = merkle.leaf_hash(b"changed" + leaves[index])
    assert not merkle.verify_inclusion(index, len(leaves), changed, proof, root)
    if proof:
        position = data.draw(st.integers(0, len(proof) - 1))
        flipped = bytes([proof[position][0] ^ 1]) + proof[position][1:]
        tampered = [*proof[:position], flipped, *proof[position + 1 :]]
        assert not merkle.verify_inclusion(index, len(leaves), leaves[index], tampered, root)


@given(leaves=_leaves, data=st.data())
def test_every_generated_consistency_proof_verifies_and_a_rewritten_prefix_fails(
    leaves: list[bytes], data: st.DataObject
) -> None:
    old_size = data.draw(st.integers(1, len(leaves)))
    old_root = merkle.root_hash(leaves[:old_size])
    new_root = merkle.root_hash(leaves)
    proof = merkle.consistency_proof(leaves, old_size)
    assert merkle.verify_consistency(old_size, len(leaves), old_root, new_root, proof)
    # A history rewritten inside the old prefix gives a new tree the old one is not a prefix of.
    position = data.draw(st.integers(0, old_size - 1))
    rewritten = [*leaves[:position], merkle.leaf_hash(b"forged"), *leaves[position + 1 :]]
    forged_root = merkle.root_hash(rewritten)
    forged_proof = merkle.consistency_proof(rewritten, old_size)
    assert not merkle.verify_consistency(old_size, len(leaves), old_root, forged_root, forged_proof)


@given(leaves=_leaves)
def test_the_frontier_and_the_recursive_definition_agree(leaves: list[bytes]) -> None:
    frontier = merkle.Frontier()
    for leaf in leaves:
        frontier.append(leaf)
    assert frontier.root() == merkle.root_hash(leaves)
