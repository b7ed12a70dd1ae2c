#!/bin/bash
# rgw-mirror.sh - mirror.sh against Ceph's RADOS Gateway instead of s3rver (tests/lib/rgw.sh).
export FERRY_S3=rgw
exec bash "$abs_top_srcdir/tests/integration/mirror.sh"
