#!/usr/bin/env python3
"""Check the S3 server started by scripts/s3-server.sh (Ceph RGW) with boto3.

Usage: s3-check.py [STATE_DIR]        (default /var/tmp/gpurent-s3)
Reads STATE_DIR/env (AWS_ENDPOINT_URL, keys, AWS_REGION, GPURENT_S3_BUCKET) and checks,
path-style, against the running server:
  1. put / get / list / delete of an object;
  2. conditional create: PUT with `If-None-Match: *` on a new key succeeds, a second
     one on the same key is refused with HTTP 412 (and the first body survives);
  3. a multipart upload that is started but never completed is not in a listing.
Prints one line per check ("PASS ..." / "FAIL ..."), exits non-zero if any fails.

boto3 comes from PyPI in a venv at /var/tmp/gpurent-s3tools (or $GPURENT_S3TOOLS_VENV);
when boto3 cannot be imported, this script creates that venv with
`python3 -m venv /var/tmp/gpurent-s3tools && /var/tmp/gpurent-s3tools/bin/pip install boto3`
and runs itself again with the venv's Python.
"""
import os
import subprocess
import sys
import uuid

VENV = os.environ.get("GPURENT_S3TOOLS_VENV", "/var/tmp/gpurent-s3tools")

try:
    import boto3
    import botocore
    from botocore.config import Config
    from botocore.exceptions import ClientError
except ImportError:
    py = os.path.join(VENV, "bin", "python")
    if os.path.realpath(sys.prefix) == os.path.realpath(VENV):
        sys.exit(f"boto3 missing in {VENV}; run {VENV}/bin/pip install boto3")
    if not os.path.exists(py):
        subprocess.run([sys.executable, "-m", "venv", VENV], check=True)
    subprocess.run([os.path.join(VENV, "bin", "pip"), "install", "-q", "boto3"], check=True)
    os.execv(py, [py, *sys.argv])


def read_env(path):
    env = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#") and "=" in line:
                k, v = line.split("=", 1)
                env[k] = v
    return env


def status_of(err):
    return err.response.get("ResponseMetadata", {}).get("HTTPStatusCode")


def main():
    state = sys.argv[1] if len(sys.argv) > 1 else "/var/tmp/gpurent-s3"
    env_path = os.path.join(state, "env")
    if not os.path.exists(env_path):
        sys.exit(f"{env_path} missing: start the server with scripts/s3-server.sh start {state}")
    env = read_env(env_path)
    bucket = env["GPURENT_S3_BUCKET"]
    # Ceph 16 predates the flexible checksums (CRC32 trailers, aws-chunked bodies)
    # that boto3 >= 1.36 sends by default, so ask for checksums only when required.
    extra = {}
    if "request_checksum_calculation" in Config.OPTION_DEFAULTS:
        extra = dict(request_checksum_calculation="when_required",
                     response_checksum_validation="when_required")
    s3 = boto3.client(
        "s3",
        endpoint_url=env["AWS_ENDPOINT_URL"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        region_name=env.get("AWS_REGION", "us-east-1"),
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}, **extra),
    )
    print(f"info: boto3 {boto3.__version__}, botocore {botocore.__version__}, "
          f"endpoint {env['AWS_ENDPOINT_URL']}, bucket {bucket}")
    prefix = f"s3-check/{uuid.uuid4().hex}/"
    failures = 0

    def report(ok, name, detail):
        nonlocal failures
        failures += 0 if ok else 1
        print(f"{'PASS' if ok else 'FAIL'} {name}: {detail}")

    # 1. put / get / list / delete
    try:
        key = prefix + "plain.txt"
        body = b"hello gpurent\n"
        s3.put_object(Bucket=bucket, Key=key, Body=body)
        got = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        listed = [o["Key"] for o in
                  s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])]
        s3.delete_object(Bucket=bucket, Key=key)
        after = s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("KeyCount", 0)
        ok = got == body and listed == [key] and after == 0
        report(ok, "put/get/list/delete",
               f"get {'matches' if got == body else 'DIFFERS'}, listed {listed}, "
               f"{after} keys after delete")
    except ClientError as e:
        report(False, "put/get/list/delete", f"HTTP {status_of(e)} {e}")

    # 2. conditional create with If-None-Match: *
    key = prefix + "create-once.txt"
    native = "IfNoneMatch" in s3.meta.service_model.operation_model(
        "PutObject").input_shape.members

    def put_if_absent(body):
        if native:
            return s3.put_object(Bucket=bucket, Key=key, Body=body, IfNoneMatch="*")
        # Older botocore: add the header through an event hook for this one call.
        def add_header(request, **_):
            request.headers["If-None-Match"] = "*"
        s3.meta.events.register("before-sign.s3.PutObject", add_header)
        try:
            return s3.put_object(Bucket=bucket, Key=key, Body=body)
        finally:
            s3.meta.events.unregister("before-sign.s3.PutObject", add_header)

    how = "IfNoneMatch='*' parameter" if native else "If-None-Match header via event hook"
    try:
        first = put_if_absent(b"first")
        first_status = first["ResponseMetadata"]["HTTPStatusCode"]
    except ClientError as e:
        first_status = status_of(e)
    try:
        second = put_if_absent(b"second")
        second_status, code = second["ResponseMetadata"]["HTTPStatusCode"], "-"
    except ClientError as e:
        second_status, code = status_of(e), e.response.get("Error", {}).get("Code")
    kept = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    s3.delete_object(Bucket=bucket, Key=key)
    report(first_status == 200 and second_status == 412 and kept == b"first",
           "conditional create (If-None-Match: *)",
           f"first PUT -> HTTP {first_status}, second PUT -> HTTP {second_status} ({code}), "
           f"stored body {kept!r} [{how}]")

    # 3. an unfinished multipart upload is not listed
    key = prefix + "unfinished-multipart.bin"
    upload_id = None
    try:
        upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
        s3.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=1,
                       Body=b"x" * (5 * 1024 * 1024))
        listed = [o["Key"] for o in
                  s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])]
        uploads = [u["Key"] for u in
                   s3.list_multipart_uploads(Bucket=bucket, Prefix=prefix).get("Uploads", [])]
        try:
            s3.head_object(Bucket=bucket, Key=key)
            head = 200
        except ClientError as e:
            head = status_of(e)
        report(listed == [] and head == 404, "unfinished multipart invisible",
               f"list_objects_v2 -> {listed}, HEAD -> HTTP {head}, "
               f"list_multipart_uploads -> {uploads}")
    except ClientError as e:
        report(False, "unfinished multipart invisible", f"HTTP {status_of(e)} {e}")
    finally:
        if upload_id:
            s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)

    print(f"{3 - failures} passed, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
