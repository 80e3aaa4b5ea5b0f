import platform
import subprocess
import sys

import pytest

from tabgen.glibc_heap import keep_large_blocks

glibc = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's malloc only")

FAULTS_OF_REALLOCATING = """
import resource
import torch
from tabgen.glibc_heap import keep_large_blocks
assert keep_large_blocks()
torch.ones(5_000_000) + torch.ones(2_500_000).repeat(2)  # 20 MB blocks, freed
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    torch.ones(5_000_000) + torch.ones(2_500_000).repeat(2)
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


@glibc
def test_blocks_freed_by_one_batch_serve_the_next_without_fresh_pages():
    env = {"PATH": "/usr/bin:/bin"}  # none of malloc's own variables
    faults = int(subprocess.run([sys.executable, "-c", FAULTS_OF_REALLOCATING], env=env, check=True,
                                capture_output=True, text=True).stdout)
    assert faults < 20_000  # 5,000-7,000 measured; 73,000 without the thresholds


@glibc
def test_a_user_who_set_malloc_parameters_keeps_them(monkeypatch):
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "0")
    assert not keep_large_blocks()
