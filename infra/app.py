"""Builds the CDK app from context: the configuration file, the deployment's ids, cdk-nag."""

from __future__ import annotations

from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_lambda as lambda_

from functions.core.config import Settings, load_settings_file
from functions.core.errors import ConfigurationError
from infra.deploy_context import DeployContext
from infra.nag import add_nag
from infra.stack import STATEMACHINES_DIR, RunbookAutopilotStack


def load_settings(path: Path) -> Settings:
    """The validated configuration; an invalid one names the file and each bad field."""
    try:
        return load_settings_file(path)
    except ConfigurationError as error:
        raise ConfigurationError(f"{path}: {error}") from None


def build(
    app: cdk.App,
    *,
    code: lambda_.Code | None = None,
    statemachines_dir: Path = STATEMACHINES_DIR,
    nag: bool = True,
) -> RunbookAutopilotStack:
    deploy = DeployContext.from_node(app.node)
    settings = load_settings(deploy.config_path)
    stack = RunbookAutopilotStack(
        app,
        "RunbookAutopilot",
        settings=settings,
        deploy=deploy,
        code=code,
        statemachines_dir=statemachines_dir,
    )
    if nag:
        add_nag(app)
    return stack
