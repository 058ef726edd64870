"""The three PATCH flavours the simulator applies, on the shapes kubectl and the Python client send."""

from __future__ import annotations

import pytest

from runbook.sandbox.kube_sim.patch import (
    PatchError,
    apply_patch,
    json_patch,
    merge_patch,
    strategic_merge_patch,
)

DEPLOYMENT = {
    "metadata": {"name": "web", "annotations": {"a": "1", "b": "2"}},
    "spec": {
        "replicas": 3,
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {
                "containers": [
                    {"name": "web", "image": "web:1", "env": [{"name": "A", "value": "1"}]},
                    {"name": "sidecar", "image": "proxy:1"},
                ]
            },
        },
    },
}


def test_strategic_merge_patch_merges_containers_by_name_like_kubectl_set_image():
    patch = {
        "spec": {
            "template": {
                "spec": {
                    "$setElementOrder/containers": [{"name": "web"}, {"name": "sidecar"}],
                    "containers": [{"name": "web", "image": "web:2"}],
                }
            }
        }
    }
    result = strategic_merge_patch(DEPLOYMENT, patch)
    assert [(c["name"], c["image"]) for c in result["spec"]["template"]["spec"]["containers"]] == [
        ("web", "web:2"),
        ("sidecar", "proxy:1"),
    ]
    assert result["spec"]["template"]["spec"]["containers"][0]["env"] == [{"name": "A", "value": "1"}]
    assert DEPLOYMENT["spec"]["template"]["spec"]["containers"][0]["image"] == "web:1"  # input untouched


def test_strategic_merge_patch_directives_delete_and_replace():
    delete_sidecar = {
        "spec": {"template": {"spec": {"containers": [{"name": "sidecar", "$patch": "delete"}]}}}
    }
    result = strategic_merge_patch(DEPLOYMENT, delete_sidecar)
    assert [c["name"] for c in result["spec"]["template"]["spec"]["containers"]] == ["web"]
    replace_annotations = {"metadata": {"annotations": {"$patch": "replace", "c": "3"}}}
    assert strategic_merge_patch(DEPLOYMENT, replace_annotations)["metadata"]["annotations"] == {"c": "3"}


def test_strategic_merge_patch_null_deletes_a_key():
    result = strategic_merge_patch(DEPLOYMENT, {"metadata": {"annotations": {"a": None}}})
    assert result["metadata"]["annotations"] == {"b": "2"}


def test_merge_patch_replaces_lists_whole():
    result = merge_patch(
        DEPLOYMENT, {"spec": {"template": {"spec": {"containers": [{"name": "x", "image": "x"}]}}}}
    )
    assert result["spec"]["template"]["spec"]["containers"] == [{"name": "x", "image": "x"}]


def test_json_patch_replace_test_add_remove():
    ops = [
        {"op": "test", "path": "/spec/replicas", "value": 3},
        {"op": "replace", "path": "/spec/replicas", "value": 5},
        {"op": "add", "path": "/metadata/annotations/x~1y", "value": "z"},
        {"op": "remove", "path": "/metadata/annotations/a"},
        {"op": "add", "path": "/spec/template/spec/containers/-", "value": {"name": "c", "image": "c"}},
    ]
    result = json_patch(DEPLOYMENT, ops)
    assert result["spec"]["replicas"] == 5
    assert result["metadata"]["annotations"] == {"b": "2", "x/y": "z"}
    assert [c["name"] for c in result["spec"]["template"]["spec"]["containers"]] == ["web", "sidecar", "c"]


@pytest.mark.parametrize(
    "ops",
    [
        [{"op": "test", "path": "/spec/replicas", "value": 4}],
        [{"op": "replace", "path": "/spec/nothing", "value": 1}],
        [{"op": "remove", "path": "/metadata/annotations/zzz"}],
        {"op": "replace"},
    ],
)
def test_json_patch_failures_raise(ops):
    with pytest.raises(PatchError):
        json_patch(DEPLOYMENT, ops)


def test_apply_patch_picks_the_flavour_from_the_content_type():
    assert apply_patch("application/merge-patch+json; charset=utf-8", {"a": 1}, {"b": 2}) == {"a": 1, "b": 2}
    with pytest.raises(PatchError, match="unsupported"):
        apply_patch("application/apply-patch+yaml", {}, {})
