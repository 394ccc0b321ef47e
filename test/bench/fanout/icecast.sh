#!/bin/sh
# Starts Icecast 2 (Debian's icecast2) on 127.0.0.1:8765 with a configuration
# comparable to babelcast's fan-out: live start (no burst), a ~3 s queue
# (144000 bytes of 24 kHz PCM16), up to 10000 listeners. Prints its PID.
#
#   pid=$(sh test/bench/fanout/icecast.sh)
#   go run ./test/bench/fanout -listeners 100,1000 -target http://127.0.0.1:8765/bench \
#       -source-put http://source:benchpw@127.0.0.1:8765/bench -pid $pid
#   kill $pid
set -eu
dir=${ICECAST_DIR:-/tmp/babelcast-icecast}
mkdir -p "$dir/log"
cat > "$dir/icecast.xml" <<XML
<icecast>
  <location>loopback</location>
  <admin>bench@localhost</admin>
  <limits>
    <clients>10000</clients>
    <sources>2</sources>
    <queue-size>144000</queue-size>
    <client-timeout>30</client-timeout>
    <header-timeout>15</header-timeout>
    <source-timeout>600</source-timeout>
    <burst-on-connect>0</burst-on-connect>
    <burst-size>0</burst-size>
  </limits>
  <authentication>
    <source-password>benchpw</source-password>
    <admin-user>admin</admin-user>
    <admin-password>benchadmin</admin-password>
  </authentication>
  <hostname>127.0.0.1</hostname>
  <listen-socket>
    <port>8765</port>
    <bind-address>127.0.0.1</bind-address>
  </listen-socket>
  <fileserve>0</fileserve>
  <paths>
    <basedir>/usr/share/icecast2</basedir>
    <logdir>$dir/log</logdir>
    <webroot>/usr/share/icecast2/web</webroot>
    <adminroot>/usr/share/icecast2/admin</adminroot>
  </paths>
  <logging>
    <accesslog>-</accesslog>
    <errorlog>error.log</errorlog>
    <loglevel>${ICECAST_LOGLEVEL:-2}</loglevel>
  </logging>
  <security>
    <chroot>0</chroot>
    <changeowner><user>icecast2</user><group>icecast</group></changeowner>
  </security>
</icecast>
XML
chown -R icecast2:icecast "$dir"
ulimit -n "$(ulimit -Hn)"
icecast2 -b -c "$dir/icecast.xml" >/dev/null 2>&1
sleep 1
pgrep -n -f "icecast2 -b -c $dir/icecast.xml"
