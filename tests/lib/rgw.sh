# rgw.sh - a single-node Ceph with its RADOS Gateway for the integration tests, sourced by
# harness.sh. An S3 that verifies SigV4 and implements versioning, SSE, multipart and
# preconditions for real (with its own quirks), beside s3rver.
#
#   h_start_rgw       one mon, one memstore OSD and radosgw, every file in $H_TMP/ceph, on
#                     free loopback ports; a user with known keys; bucket $H_BUCKET created
#                     -> H_S3_URL H_S3_PORT H_BUCKET; AWS_* credentials exported
#   h_stop_rgw        stop radosgw, the OSD and the mon (in that order, by pid)
#   h_rgw_admin ARGS  radosgw-admin on this cluster
#
# The harness's h_start_s3 calls h_start_rgw when FERRY_S3=rgw, so a test written for
# s3rver runs unchanged against RGW (tests/integration/rgw-*.sh set it and run the base
# test). Extra ceph.conf lines for the [client.rgw.a] section: H_RGW_CONF_EXTRA.

H_RGW_PIDS=()
H_RGW_ACCESS_KEY=FERRYRGWTEST
H_RGW_SECRET_KEY=ferry-rgw-test-secret

h_rgw_ceph() { ceph -c "$H_CEPH_DIR/ceph.conf" "$@"; }
h_rgw_admin() { radosgw-admin -c "$H_CEPH_DIR/ceph.conf" -n client.admin "$@"; }

# _h_rgw_pid NAME: the pid its daemon wrote, once it did.
_h_rgw_pid() {
	local f=$H_CEPH_DIR/run/$1.pid
	h_wait_for 30 test -s "$f" || h_bail "ceph daemon $1 wrote no pid file (see ceph/log)"
	H_RGW_PIDS+=("$(cat "$f")")
}

h_start_rgw() {
	h_need_cmd ceph ceph-mon ceph-osd radosgw radosgw-admin monmaptool ceph-authtool uuidgen curl
	H_BUCKET=${H_BUCKET:-ferry-test}
	H_CEPH_DIR=$H_TMP/ceph
	local d=$H_CEPH_DIR mon2 mon1 uuid
	mkdir -p "$d"/{run,log,mon,osd/ceph-0,rgw,tmp}
	mon2=$(h_free_port)
	mon1=$(h_free_port)
	H_S3_PORT=$(h_free_port)
	H_S3_URL=http://127.0.0.1:$H_S3_PORT
	cat >"$d/ceph.conf" <<EOF
[global]
fsid = $(uuidgen)
mon host = [v2:127.0.0.1:$mon2,v1:127.0.0.1:$mon1]
mon initial members = a
auth cluster required = none
auth service required = none
auth client required = none
run dir = $d/run
admin socket = $d/run/\$name.asok
pid file = $d/run/\$name.pid
log file = $d/log/\$name.log
keyring = $d/keyring
tmp dir = $d/tmp
crash dir = $d/tmp
mon data = $d/mon/\$cluster-\$id
osd data = $d/osd/\$cluster-\$id
osd objectstore = memstore
memstore device bytes = $((1 << 30))
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
mon max pg per osd = 1000
mon warn on pool no redundancy = false
ms bind ipv4 = true
ms bind ipv6 = false
public addr = 127.0.0.1
public network = 127.0.0.0/8
osd data size = 0
osd max object name len = 460
osd max object namespace len = 64
erasure code dir = /usr/lib/x86_64-linux-gnu/ceph/erasure-code
plugin dir = /usr/lib/x86_64-linux-gnu/rados-classes
osd class dir = /usr/lib/x86_64-linux-gnu/rados-classes
[client.rgw.a]
rgw data = $d/rgw
rgw frontends = beast endpoint=127.0.0.1:$H_S3_PORT tcp_nodelay=1
ms mon client mode = crc secure
rgw dns name = s3.amazonaws.com
rgw enable usage log = false
rgw crypt require ssl = false
rgw crypt s3 kms backend = testing
rgw crypt s3 kms encryption keys = testkey-1=eIuupO9aTmN1rdhed4JZE4iHObGy0qLgQWJcWbbvuEg=
${H_RGW_CONF_EXTRA:-}
EOF
	ceph-authtool --create-keyring "$d/keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null &&
		ceph-authtool "$d/keyring" --gen-key -n client.admin --cap mon 'allow *' \
			--cap osd 'allow *' --cap mds 'allow *' --cap mgr 'allow *' >/dev/null ||
		h_bail "ceph-authtool failed"
	monmaptool --create --clobber --fsid "$(grep '^fsid' "$d/ceph.conf" | cut -d' ' -f3)" \
		--addv a "[v2:127.0.0.1:$mon2,v1:127.0.0.1:$mon1]" "$d/monmap" >/dev/null ||
		h_bail "monmaptool failed"
	ceph-mon -c "$d/ceph.conf" --mkfs -i a --monmap "$d/monmap" --keyring "$d/keyring" \
		>>"$d/log/setup.log" 2>&1 || h_bail "ceph-mon --mkfs failed (see ceph/log)"
	ceph-mon -c "$d/ceph.conf" -i a >>"$d/log/setup.log" 2>&1 || h_bail "ceph-mon did not start"
	_h_rgw_pid mon.a
	h_wait_for 30 h_rgw_ceph -s --connect-timeout 2 || h_bail "ceph-mon does not answer"
	uuid=$(uuidgen)
	h_rgw_ceph osd new "$uuid" >>"$d/log/setup.log" 2>&1 || h_bail "ceph osd new failed"
	ceph-osd -c "$d/ceph.conf" -i 0 --mkfs --osd-uuid "$uuid" >>"$d/log/setup.log" 2>&1 ||
		h_bail "ceph-osd --mkfs failed (see ceph/log)"
	ceph-osd -c "$d/ceph.conf" -i 0 >>"$d/log/setup.log" 2>&1 || h_bail "ceph-osd did not start"
	_h_rgw_pid osd.0
	h_wait_for 60 _h_rgw_osd_up || h_bail "osd.0 is not up (see ceph/log)"
	radosgw -c "$d/ceph.conf" -n client.rgw.a >>"$d/log/setup.log" 2>&1 ||
		h_bail "radosgw did not start (see ceph/log)"
	_h_rgw_pid client.rgw.a
	h_wait_for 90 curl -s -o /dev/null "$H_S3_URL/" || h_bail "radosgw does not answer (see ceph/log)"
	h_rgw_admin user create --uid=ferry --display-name=ferry \
		--access-key="$H_RGW_ACCESS_KEY" --secret="$H_RGW_SECRET_KEY" >>"$d/log/setup.log" 2>&1 ||
		h_bail "radosgw-admin user create failed"
	export AWS_ACCESS_KEY_ID=$H_RGW_ACCESS_KEY AWS_SECRET_ACCESS_KEY=$H_RGW_SECRET_KEY
	export AWS_DEFAULT_REGION=us-east-1
	unset AWS_SESSION_TOKEN AWS_PROFILE
	export AWS_EC2_METADATA_DISABLED=true AWS_PAGER=
	h_wait_for 30 h_s3_curl -X PUT "$H_S3_URL/$H_BUCKET" ||
		h_bail "RGW refused to create bucket $H_BUCKET"
	H_S3_KIND=rgw
}

_h_rgw_osd_up() { h_rgw_ceph osd dump 2>/dev/null | grep -q '^osd\.0 up'; }

h_stop_rgw() {
	local i p
	# radosgw first, the mon last: the reverse of the start
	for ((i = ${#H_RGW_PIDS[@]} - 1; i >= 0; i--)); do
		p=${H_RGW_PIDS[$i]}
		kill "$p" 2>/dev/null
		h_wait_gone "$p" 15 || kill -9 "$p" 2>/dev/null
	done
	H_RGW_PIDS=()
}
