#!/bin/bash
# rgw-migrate-two.sh - migrate-two.sh against Ceph's RADOS Gateway instead of s3rver (tests/lib/rgw.sh).
export FERRY_S3=rgw
exec bash "$abs_top_srcdir/tests/integration/migrate-two.sh"
