#!/usr/bin/env bash
# Certificates for cluster TLS (ADR 27, README "Cluster mode"): a CA of the cluster's own (made once) and,
# for each instance named, a certificate it signs and its private key, as the PEM files that
# --cluster-tls-cert, --cluster-tls-key and --cluster-tls-ca take.
#
#   config/cluster-certs.sh DIR NAME [NAME...]     e.g. config/cluster-certs.sh data/cluster/tls s1 w1 a1
#
# Writes DIR/ca.pem (give it to every instance), DIR/ca-key.pem (keep it off the instances: whoever holds
# it can make members), and DIR/NAME.pem + DIR/NAME-key.pem per instance. An instance's certificate is
# valid for client and server use (the event bus is TLS both ways); SANs: ANNEAL_CERT_SANS, default
# DNS:localhost,IP:127.0.0.1 (instances are not checked by name, only by the CA). Needs openssl.
set -euo pipefail
dir=${1:?usage: $0 DIR NAME [NAME...]}
shift
[ $# -gt 0 ] || { echo "usage: $0 DIR NAME [NAME...]" >&2; exit 2; }
days=${ANNEAL_CERT_DAYS:-825}
mkdir -p "$dir"
umask 077
if [ ! -f "$dir/ca.pem" ]; then
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$dir/ca-key.pem"
  openssl req -x509 -new -key "$dir/ca-key.pem" -subj "/CN=anneal cluster CA" -days "$days" -sha256 \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" -out "$dir/ca.pem"
  echo "CA: $dir/ca.pem (its key $dir/ca-key.pem stays with whoever admits members)"
fi
for name in "$@"; do
  [[ "$name" =~ ^[A-Za-z0-9._-]+$ ]] || { echo "instance name '$name': letters, digits, '.', '_' or '-'" >&2; exit 2; }
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$dir/$name-key.pem"
  openssl req -new -key "$dir/$name-key.pem" -subj "/CN=$name" -out "$dir/$name.csr"
  ext=$(mktemp)
  printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth,clientAuth\nkeyUsage=critical,digitalSignature\n' \
    "${ANNEAL_CERT_SANS:-DNS:localhost,IP:127.0.0.1}" > "$ext"
  openssl x509 -req -in "$dir/$name.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca-key.pem" -CAcreateserial -days "$days" \
    -sha256 -extfile "$ext" -out "$dir/$name.pem" 2>/dev/null
  rm -f "$ext" "$dir/$name.csr"
  echo "$name: --cluster-tls-cert $dir/$name.pem --cluster-tls-key $dir/$name-key.pem --cluster-tls-ca $dir/ca.pem"
done
