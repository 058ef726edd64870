"""The sandbox patches moto in one module; a moto upgrade that moves a patch point must fail here, loudly."""

from __future__ import annotations

import pytest

from runbook.sandbox import moto_patches


def test_every_patch_point_is_where_the_sandbox_expects_it():
    moto_patches.check_patch_points()


def test_a_moved_patch_point_is_named_in_the_failure(monkeypatch):
    monkeypatch.setitem(
        moto_patches.PATCH_POINTS, "moto.awslambda.models:LambdaFunction._run_in_docker", None
    )

    with pytest.raises(moto_patches.MotoPatchPointMoved, match=r"LambdaFunction\._run_in_docker"):
        moto_patches.check_patch_points()


def test_a_changed_signature_is_named_in_the_failure(monkeypatch):
    monkeypatch.setitem(
        moto_patches.PATCH_POINTS, "moto.awslambda.models:LambdaFunction._invoke_lambda", ["self"]
    )

    with pytest.raises(moto_patches.MotoPatchPointMoved, match="now takes"):
        moto_patches.check_patch_points()
