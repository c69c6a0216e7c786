"""The fault injector composes with the IAM authorizer: faults are outermost (see rehearsal/faults.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rehearsal.emulator import Emulator
from rehearsal.faults import ApiFault, FaultInjector
from rehearsal.iam.authorizer import Authorizer
from tests.reliability.test_faults import NO_RETRY, error_of


def test_the_injector_sits_in_front_of_the_authorizer_and_unwraps_on_close(tmp_path: Path) -> None:
    authorizer = Authorizer()
    injector = FaultInjector()
    with Emulator(authorizer=authorizer, extensions=[injector], workdir=tmp_path / "emu") as emu:
        trust = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "sagemaker.amazonaws.com"},
                    "Action": "sts:AssumeRole",
                }
            ],
        }
        role = emu.client("iam").create_role(RoleName="no-rights", AssumeRolePolicyDocument=json.dumps(trust))
        creds = authorizer.issue_credentials(role["Role"]["Arn"], service="sagemaker.amazonaws.com")
        sm = emu.client(
            "sagemaker",
            config=NO_RETRY,
            aws_access_key_id=creds["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=creds["AWS_SECRET_ACCESS_KEY"],
            aws_session_token=creds["AWS_SESSION_TOKEN"],
        )
        injector.add(ApiFault("sagemaker", "ListModels", "throttle"))
        assert error_of(sm.list_models) == (400, "ThrottlingException")
        assert authorizer.denials == []  # the throttled call never reached IAM
        assert error_of(sm.list_models) == (400, "AccessDeniedException")
        assert len(authorizer.denials) == 1
        server: Any = emu._server._server  # pyright: ignore[reportPrivateUsage, reportOptionalMemberAccess]
        wrapped = server.app
        injector.close()
        assert server.app is not wrapped  # the authorizer's app is back in front of moto
        injector.close()  # idempotent
