#!/usr/bin/env python3
"""Generated-clients check: integrate with the credit suite the way a Python team would.

Generates Python stubs from the repository's ``proto/`` with grpcio-tools, starts the built
``credit-suite serve`` binary, and talks to it only through those generated stubs plus the
standard gRPC health and reflection clients:

* every credit.v1 service reports SERVING on grpc.health.v1;
* server reflection lists the four services, and the methods it describes match proto/;
* one RPC per service fails with UNAUTHENTICATED without a token and reaches the service
  (anything but UNAUTHENTICATED / PERMISSION_DENIED) with ``authorization: Bearer <admin>``;
* a credit.v1.Money message round-trips through the wire format unchanged.

Usage:
    python check_generated_clients.py --binary target/debug/credit-suite
    python check_generated_clients.py --binary target/debug/credit-suite \\
        --database-url postgres://... --redis-url redis://...

Prints one line per check, then ``python-clients: N passed, M failed``; exits 0 only when
M == 0. Needs Python 3.11+ and the packages of requirements.txt beside this file.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

REPO_ROOT = Path(__file__).resolve().parents[2]
PROTO_ROOT = REPO_ROOT / "proto"
PROTO_PACKAGE_DIR = Path("credit") / "v1"

SERVICES = (
    "credit.v1.IntakeService",
    "credit.v1.RatingService",
    "credit.v1.LimitService",
    "credit.v1.CollectionsService",
    "credit.v1.ApprovalService",
)
HEALTH_DEADLINE_SECS = 60.0
RPC_TIMEOUT_SECS = 10.0
STOP_GRACE_SECS = 10.0
TOKEN_NAME = "python-check"


# --------------------------------------------------------------------------------------------
# Reporting


@dataclass
class Report:
    passed: int = 0
    failed: int = 0
    failures: list[str] = field(default_factory=list)

    def check(self, ok: bool, description: str) -> bool:
        if ok:
            self.passed += 1
            print(f"ok   {description}", flush=True)
        else:
            self.failed += 1
            self.failures.append(description)
            print(f"FAIL {description}", flush=True)
        return ok

    def ok(self, description: str) -> bool:
        return self.check(True, description)

    def fail(self, description: str) -> bool:
        return self.check(False, description)


class Abort(Exception):
    """A failure after which the remaining checks cannot run (already reported)."""


# --------------------------------------------------------------------------------------------
# Stub generation


def generate_stubs(report: Report, out_dir: Path) -> dict[str, Any]:
    """Runs grpc_tools.protoc over proto/credit/v1/*.proto and imports the result."""
    protos = sorted((PROTO_ROOT / PROTO_PACKAGE_DIR).glob("*.proto"))
    if not protos:
        report.fail(f"protoc: no .proto files under {PROTO_ROOT / PROTO_PACKAGE_DIR}")
        raise Abort
    command = [
        sys.executable,
        "-m",
        "grpc_tools.protoc",
        f"-I{PROTO_ROOT}",
        f"--python_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        *[str(path) for path in protos],
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        report.fail(f"protoc credit/v1/*.proto exited {result.returncode}: {result.stderr.strip()}")
        raise Abort
    report.ok(f"protoc credit/v1/*.proto -> {len(protos)} files, *_pb2 and *_pb2_grpc")

    # The generated modules import each other as `credit.v1.xxx_pb2`: make `credit` and
    # `credit.v1` regular packages under out_dir and put out_dir first on sys.path.
    for package in (out_dir / "credit", out_dir / PROTO_PACKAGE_DIR):
        (package / "__init__.py").touch()
    sys.path.insert(0, str(out_dir))

    modules: dict[str, Any] = {}
    for proto in protos:
        for suffix in ("_pb2", "_pb2_grpc"):
            name = f"credit.v1.{proto.stem}{suffix}"
            try:
                modules[f"{proto.stem}{suffix}"] = importlib.import_module(name)
            except Exception as error:  # noqa: BLE001 - any import error is the finding
                report.fail(f"import {name}: {type(error).__name__}: {error}")
                raise Abort from error
    report.ok(f"import {len(modules)} generated modules as credit.v1.*")
    return modules


def check_money_round_trip(report: Report, common_pb2: Any) -> None:
    original = common_pb2.Money(amount="1250.00", currency="CNY")
    wire = original.SerializeToString()
    parsed = common_pb2.Money.FromString(wire)
    report.check(
        parsed == original and parsed.amount == "1250.00" and parsed.currency == "CNY",
        f"money round-trip credit.v1.Money(amount={parsed.amount!r}, "
        f"currency={parsed.currency!r}) via {len(wire)} bytes",
    )


# --------------------------------------------------------------------------------------------
# The server under test


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def suite_env(args: argparse.Namespace, data_dir: Path, listen: str, metrics: str) -> dict[str, str]:
    # Start from the caller's environment without any CREDIT_* setting that could redirect
    # the suite (a CREDIT_CONFIG file, another database), then set exactly what this check uses.
    env = {key: value for key, value in os.environ.items() if not key.startswith("CREDIT_")}
    env.update(
        CREDIT_LISTEN_ADDR=listen,
        CREDIT_METRICS_ADDR=metrics,
        CREDIT_DATA_DIR=str(data_dir),
        RUST_LOG="warn",
    )
    if args.database_url:
        env["CREDIT_DATABASE_URL"] = args.database_url
    if args.redis_url:
        env["CREDIT_REDIS_URL"] = args.redis_url
    return env


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    stderr_path: Path

    def stderr_text(self) -> str:
        try:
            return self.stderr_path.read_text(errors="replace")
        except OSError as error:
            return f"(cannot read server stderr: {error})"


def start_server(binary: Path, env: dict[str, str], work_dir: Path) -> Server:
    stderr_path = work_dir / "credit-suite.stderr"
    with open(work_dir / "credit-suite.stdout", "wb") as stdout, open(stderr_path, "wb") as stderr:
        process = subprocess.Popen(
            [str(binary), "serve"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
        )
    return Server(process, stderr_path)


def stop_server(server: Server) -> tuple[str, int | None]:
    """SIGTERM, then SIGKILL after STOP_GRACE_SECS. Returns how it ended ("exited" on its own
    before the signal, "stopped" by SIGTERM, "killed") and its exit code."""
    process = server.process
    if process.poll() is not None:
        return "exited", process.returncode
    process.send_signal(signal.SIGTERM)
    try:
        return "stopped", process.wait(timeout=STOP_GRACE_SECS)
    except subprocess.TimeoutExpired:
        process.kill()
        return "killed", process.wait()


# --------------------------------------------------------------------------------------------
# Checks against the running server


def wait_for_health(report: Report, channel: Any, server: Server) -> None:
    from grpc_health.v1 import health_pb2, health_pb2_grpc
    import grpc

    stub = health_pb2_grpc.HealthStub(channel)
    serving = health_pb2.HealthCheckResponse.SERVING
    last: dict[str, str] = {name: "no answer" for name in SERVICES}
    pending = set(SERVICES)
    deadline = time.monotonic() + HEALTH_DEADLINE_SECS
    while pending and time.monotonic() < deadline and server.process.poll() is None:
        for name in sorted(pending):
            try:
                response = stub.Check(health_pb2.HealthCheckRequest(service=name), timeout=2.0)
            except grpc.RpcError as error:
                last[name] = f"{error.code().name}: {error.details()}"
                continue
            last[name] = health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)
            if response.status == serving:
                pending.discard(name)
        if pending:
            time.sleep(0.25)
    exited = server.process.poll()
    for name in SERVICES:
        if name not in pending:
            report.ok(f"health {name} SERVING")
        elif exited is not None:
            report.fail(f"health {name} {last[name]} (server exited with {exited})")
        else:
            report.fail(f"health {name} {last[name]} after {HEALTH_DEADLINE_SECS:.0f} s")
    if pending:
        raise Abort


def check_reflection(report: Report, channel: Any, modules: dict[str, Any]) -> None:
    from google.protobuf.descriptor_pool import DescriptorPool
    from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
        ProtoReflectionDescriptorDatabase,
    )

    database = ProtoReflectionDescriptorDatabase(channel)
    listed = set(database.get_services())
    for name in SERVICES:
        report.check(name in listed, f"reflection lists {name}")

    # The server's contract, as reflection describes it, must be the one generated from proto/:
    # same methods with the same request and response types.
    pool = DescriptorPool(database)
    for name in SERVICES:
        if name not in listed:
            continue
        generated = find_generated_service(modules, name)
        try:
            served = pool.FindServiceByName(name)
        except Exception as error:  # noqa: BLE001 - a reflection failure is the finding
            report.fail(f"reflection describes {name}: {type(error).__name__}: {error}")
            continue
        served_methods = method_signatures(served)
        generated_methods = method_signatures(generated)
        if served_methods == generated_methods:
            report.ok(f"reflection {name} matches proto/ ({len(served_methods)} methods)")
        else:
            only_served = sorted(set(served_methods.items()) - set(generated_methods.items()))
            only_proto = sorted(set(generated_methods.items()) - set(served_methods.items()))
            report.fail(
                f"reflection {name} differs from proto/: served only {only_served}, "
                f"proto/ only {only_proto}"
            )


def find_generated_service(modules: dict[str, Any], full_name: str) -> Any:
    short = full_name.rsplit(".", 1)[1]
    for module_name, module in modules.items():
        if module_name.endswith("_pb2") and short in module.DESCRIPTOR.services_by_name:
            return module.DESCRIPTOR.services_by_name[short]
    raise LookupError(f"{full_name} is not in the generated stubs")


def method_signatures(service: Any) -> dict[str, tuple[str, str, bool, bool]]:
    return {
        method.name: (
            method.input_type.full_name,
            method.output_type.full_name,
            bool(method.client_streaming),
            bool(method.server_streaming),
        )
        for method in service.methods
    }


# Codes that show the call went through authentication and reached the service. Today the
# methods answer UNIMPLEMENTED; as they are implemented they answer OK, NOT_FOUND (no such
# customer) or INVALID_ARGUMENT.
REACHED_SERVICE = ("OK", "UNIMPLEMENTED", "NOT_FOUND", "INVALID_ARGUMENT")


def service_calls(modules: dict[str, Any]) -> list[tuple[str, str, Callable[[Any], Any], Any]]:
    """(service, method, stub factory, request) for one read-only RPC of each service."""
    common = modules["common_pb2"]
    intake, intake_grpc = modules["intake_pb2"], modules["intake_pb2_grpc"]
    rating, rating_grpc = modules["rating_pb2"], modules["rating_pb2_grpc"]
    limits, limits_grpc = modules["limits_pb2"], modules["limits_pb2_grpc"]
    collections, collections_grpc = modules["collections_pb2"], modules["collections_pb2_grpc"]
    approvals, approvals_grpc = modules["approvals_pb2"], modules["approvals_pb2_grpc"]
    return [
        (
            "credit.v1.IntakeService",
            "GetCustomer",
            intake_grpc.IntakeServiceStub,
            intake.GetCustomerRequest(customer_id="c-1"),
        ),
        (
            "credit.v1.RatingService",
            "GetRating",
            rating_grpc.RatingServiceStub,
            rating.GetRatingRequest(customer_id="c-1"),
        ),
        (
            "credit.v1.LimitService",
            "GetExposure",
            limits_grpc.LimitServiceStub,
            limits.GetExposureRequest(scope=common.LimitScope(customer_id="c-1")),
        ),
        (
            "credit.v1.CollectionsService",
            "GetAging",
            collections_grpc.CollectionsServiceStub,
            collections.GetAgingRequest(customer_id="c-1"),
        ),
        (
            "credit.v1.ApprovalService",
            "GetApprovalMatrix",
            approvals_grpc.ApprovalServiceStub,
            approvals.GetApprovalMatrixRequest(),
        ),
    ]


def call(method: Callable[..., Any], request: Any, metadata: list[tuple[str, str]] | None) -> tuple[str, str]:
    import grpc

    try:
        method(request, metadata=metadata, timeout=RPC_TIMEOUT_SECS)
    except grpc.RpcError as error:
        return error.code().name, error.details() or ""
    return "OK", ""


def check_rpcs(report: Report, channel: Any, modules: dict[str, Any], token: str) -> None:
    bearer = [("authorization", f"Bearer {token}")]
    for service, method_name, stub_class, request in service_calls(modules):
        method = getattr(stub_class(channel), method_name)
        rpc = f"{service}/{method_name}"

        code, details = call(method, request, None)
        report.check(
            code == "UNAUTHENTICATED",
            f"no token    {rpc} -> {code}" + ("" if code == "UNAUTHENTICATED" else f" ({details})"),
        )

        code, details = call(method, request, bearer)
        suffix = f" ({details})" if details else ""
        report.check(code in REACHED_SERVICE, f"admin token {rpc} -> {code}{suffix}")


# --------------------------------------------------------------------------------------------
# Tokens


def read_admin_token(report: Report, data_dir: Path) -> str:
    path = data_dir / "admin.token"
    try:
        token = path.read_text().strip()
    except OSError as error:
        report.fail(f"admin token: cannot read {path}: {error}")
        raise Abort from error
    if not report.check(bool(token), f"admin token read from CREDIT_DATA_DIR/{path.name}"):
        raise Abort
    return token


def create_admin_token(report: Report, binary: Path, env: dict[str, str]) -> str:
    command = [str(binary), "token", "create", "--name", TOKEN_NAME, "--role", "ADMIN"]
    try:
        result = subprocess.run(
            command, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60
        )
    except subprocess.TimeoutExpired:
        report.fail("admin token: `token create` did not finish within 60 s")
        raise Abort from None
    token = result.stdout.strip()
    if result.returncode != 0 or not token or len(token.splitlines()) != 1:
        report.fail(
            f"admin token: `token create` exited {result.returncode}: {result.stderr.strip()}"
        )
        raise Abort
    report.ok(f"admin token created with `token create --name {TOKEN_NAME} --role ADMIN`")
    return token


# --------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Check that Python stubs generated from proto/ can call the credit suite."
    )
    parser.add_argument("--binary", required=True, type=Path, help="the built credit-suite binary")
    parser.add_argument("--database-url", help="PostgreSQL URL (sets CREDIT_DATABASE_URL)")
    parser.add_argument("--redis-url", help="Redis URL (sets CREDIT_REDIS_URL)")
    args = parser.parse_args(argv)
    if bool(args.database_url) != bool(args.redis_url):
        parser.error("--database-url and --redis-url go together")
    return args


def run(args: argparse.Namespace, report: Report, work_dir: Path) -> None:
    binary = args.binary.resolve()
    if not report.check(
        binary.is_file() and os.access(binary, os.X_OK), f"binary {args.binary} is executable"
    ):
        raise Abort

    stubs_dir = work_dir / "stubs"
    data_dir = work_dir / "data"
    stubs_dir.mkdir()
    data_dir.mkdir()
    modules = generate_stubs(report, stubs_dir)
    check_money_round_trip(report, modules["common_pb2"])

    import grpc

    listen = f"127.0.0.1:{free_port()}"
    env = suite_env(args, data_dir, listen, f"127.0.0.1:{free_port()}")
    backend = "postgres+redis" if args.database_url else "embedded"
    server = start_server(binary, env, work_dir)
    try:
        with grpc.insecure_channel(listen) as channel:
            try:
                wait_for_health(report, channel, server)
                check_reflection(report, channel, modules)
                if args.database_url:
                    token = create_admin_token(report, binary, env)
                else:
                    token = read_admin_token(report, data_dir)
                check_rpcs(report, channel, modules, token)
            except Abort:
                pass
            except Exception as error:  # noqa: BLE001 - report it, then still stop the server
                report.fail(f"unexpected error: {type(error).__name__}: {error}")
    finally:
        ending, code = stop_server(server)
    if ending == "exited":
        report.fail(f"server exited on its own with code {code} before the checks ended")
    elif ending == "killed":
        report.fail(f"server did not stop within {STOP_GRACE_SECS:.0f} s of SIGTERM (killed)")
    else:
        report.check(code == 0, f"server stopped on SIGTERM with exit code {code}")
    if report.failed:
        stderr = server.stderr_text().rstrip()
        print(f"---- credit-suite stderr ({backend}, {listen}) ----", flush=True)
        print(stderr if stderr else "(empty)", flush=True)
        print("---- end of credit-suite stderr ----", flush=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    report = Report()
    with tempfile.TemporaryDirectory(prefix="credit-pyclients-") as work:
        try:
            run(args, report, Path(work))
        except Abort:
            pass
        except Exception as error:  # noqa: BLE001 - a crash is one more failed check
            report.fail(f"unexpected error: {type(error).__name__}: {error}")
    print(f"python-clients: {report.passed} passed, {report.failed} failed", flush=True)
    return 0 if report.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
