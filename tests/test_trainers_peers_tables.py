"""The stored option tables are the releases' own (the ``peers`` tests).

grpo_proofs/trainers/data/ holds each supported release's option table (what lets the project
read a whole config file and answer a misspelt key). Each must equal what the installed release
declares now: trl's GRPOConfig and script dataclasses, verl's composed PPO config, OpenRLHF's
``train_ppo_ray`` parser. Negative control: a table with one option removed differs.
"""

import json
import os

import pytest

from grpo_proofs.trainers.option_tables import DATA
from grpo_proofs.trainers.peers.loading import PeerUnavailable, require
from grpo_proofs.trainers.peers.tables import RELEASES, generate


def _installed(trainer):
    try:
        require(trainer, RELEASES[trainer])
    except PeerUnavailable:
        return False
    return True


pytestmark = pytest.mark.peers


@pytest.mark.parametrize("trainer", sorted(RELEASES))
def test_stored_table_is_the_installed_releases(trainer):
    if not _installed(trainer):
        pytest.skip(f"needs {trainer}=={RELEASES[trainer]}")
    with open(os.path.join(DATA, f"{trainer}-{RELEASES[trainer]}.json"), encoding="utf-8") as fh:
        stored = json.load(fh)
    fresh = json.loads(json.dumps(generate(trainer)))
    assert stored == fresh
    key = {"trl": "fields", "verl": "defaults", "openrlhf": "options"}[trainer]
    damaged = dict(fresh)
    damaged[key] = fresh[key][1:] if isinstance(fresh[key], list) else dict(list(fresh[key].items())[1:])
    assert damaged != stored  # negative control
