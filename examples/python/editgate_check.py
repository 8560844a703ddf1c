#!/usr/bin/env python3
"""Ask a running editgate for a decision over gRPC.

    pip install grpcio grpcio-tools
    python3 examples/python/editgate_check.py --ip 162.247.74.201 --wiki enwiki --account anonymous

The stubs are generated from proto/ at start-up, so the script always matches the contract.
Not part of CI: it needs grpcio from PyPI.
"""

import argparse
import importlib
import pathlib
import sys
import tempfile
import time

import grpc
from grpc_tools import protoc

ROOT = pathlib.Path(__file__).resolve().parents[2]


def load_stubs():
    out = tempfile.mkdtemp(prefix="editgate-stubs-")
    include = str(pathlib.Path(protoc.__file__).parent / "_proto")
    rc = protoc.main([
        "protoc", f"-I{ROOT / 'proto'}", f"-I{include}",
        f"--python_out={out}", f"--grpc_python_out={out}",
        "editgate/v1/editgate.proto",
    ])
    if rc != 0:
        sys.exit("protoc failed")
    sys.path.insert(0, out)
    return (importlib.import_module("editgate.v1.editgate_pb2"),
            importlib.import_module("editgate.v1.editgate_pb2_grpc"))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--target", default="127.0.0.1:50051")
    p.add_argument("--ip", required=True)
    p.add_argument("--xff", action="append", default=[])
    p.add_argument("--wiki", default="")
    p.add_argument("--action", default="edit")
    p.add_argument("--account", default="anonymous", choices=["anonymous", "temporary", "registered"])
    p.add_argument("--right", action="append", default=[])
    p.add_argument("--edits", type=int, default=0)
    p.add_argument("--age-days", type=int, default=None)
    p.add_argument("--explain", action="store_true")
    a = p.parse_args()

    pb, rpc = load_stubs()
    account = pb.Account(
        kind=pb.AccountKind.Value("ACCOUNT_KIND_" + a.account.upper()),
        rights=a.right,
        edit_count=a.edits,
    )
    if a.age_days is not None:
        account.registered_at.FromSeconds(int(time.time()) - a.age_days * 86400)
    req = pb.CheckRequest(ip=a.ip, forwarded_for=a.xff, wiki=a.wiki, action=a.action,
                          account=account, request_id="example-1")
    with grpc.insecure_channel(a.target) as ch:
        stub = rpc.EditGateStub(ch)
        try:
            if a.explain:
                r = stub.Explain(req, timeout=2)
                print(r)
            else:
                r = stub.Check(req, timeout=2)
                print(pb.Verdict.Name(r.verdict), r.rule_id or "(default)", r.message, sep="\n")
        except grpc.RpcError as e:
            sys.exit(f"{e.code().name}: {e.details()}")


if __name__ == "__main__":
    main()
