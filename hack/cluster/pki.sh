#!/usr/bin/env bash
# Create the cluster PKI (CA, serving and client certs, service-account key pair)
# and kubeconfigs under $STATE/pki. Idempotent: existing files are kept (missing ones are
# added) unless the host name / address they were made for changed, then all are redone.
source "$(dirname "$0")/lib.sh"

PKI="$STATE/pki"
HOST_IP="$(host_ip)"
STAMP="$NODE_NAME $HOST_IP $KUBERNETES_SVC_IP"
mkdir -p "$PKI"; chmod 700 "$PKI"

if [ ! -f "$PKI/.stamp" ] || [ "$(cat "$PKI/.stamp")" != "$STAMP" ]; then
  [ -f "$PKI/ca.crt" ] && log "host identity changed: recreating PKI"
  rm -f "$PKI"/*.crt "$PKI"/*.key "$PKI"/*.csr "$PKI"/*.pub "$PKI"/*.srl "$STATE"/*.kubeconfig "$KUBECONFIG_PATH"
fi

openssl_q() { openssl "$@" 2>/dev/null; }

# ca NAME CN: a self-signed CA (the cluster CA, and the front-proxy CA for aggregated APIs).
ca() {
  [ -f "$PKI/$1.crt" ] && return
  openssl_q req -x509 -newkey rsa:2048 -nodes -keyout "$PKI/$1.key" -out "$PKI/$1.crt" \
    -days 3650 -subj "/CN=$2" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature"
}
[ -f "$PKI/ca.crt" ] || log "creating PKI in $PKI (node $NODE_NAME, address $HOST_IP)"
ca ca kascade-local-ca
ca front-proxy-ca kascade-front-proxy-ca

# cert NAME SUBJECT EXTKEYUSAGE [SAN]   (signed by $CA, default: the cluster CA)
cert() {
  local name=$1 subj=$2 eku=$3 san=${4:-} ext signer=${CA:-ca}
  [ -f "$PKI/$name.crt" ] && [ -f "$PKI/$name.key" ] && return
  ext=$(mktemp)
  {
    echo "basicConstraints=critical,CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    echo "extendedKeyUsage=$eku"
    [ -n "$san" ] && echo "subjectAltName=$san"
  } >"$ext"
  openssl_q req -newkey rsa:2048 -nodes -keyout "$PKI/$name.key" -out "$PKI/$name.csr" -subj "$subj"
  openssl_q x509 -req -in "$PKI/$name.csr" -CA "$PKI/$signer.crt" -CAkey "$PKI/$signer.key" -CAcreateserial \
    -days 3650 -extfile "$ext" -out "$PKI/$name.crt"
  rm -f "$ext" "$PKI/$name.csr"
}

cert apiserver "/CN=kube-apiserver" serverAuth \
  "DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,DNS:localhost,DNS:$NODE_NAME,IP:127.0.0.1,IP:$HOST_IP,IP:$KUBERNETES_SVC_IP"
cert apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" clientAuth
cert admin "/O=system:masters/CN=kubernetes-admin" clientAuth
cert controller-manager "/CN=system:kube-controller-manager" clientAuth
cert scheduler "/CN=system:kube-scheduler" clientAuth
cert kubelet-client "/O=system:nodes/CN=system:node:$NODE_NAME" clientAuth
cert kube-proxy "/CN=system:kube-proxy" clientAuth
CA=front-proxy-ca cert front-proxy-client "/CN=front-proxy-client" clientAuth
cert kubelet-serving "/O=system:nodes/CN=system:node:$NODE_NAME" serverAuth \
  "DNS:$NODE_NAME,DNS:localhost,IP:127.0.0.1,IP:$HOST_IP"
# Service-account token signing key pair.
if [ ! -f "$PKI/sa.pub" ]; then
  openssl_q genrsa -out "$PKI/sa.key" 2048
  openssl_q rsa -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub"
fi
chmod 600 "$PKI"/*.key

# kubeconfig FILE CERTNAME USER
kubeconfig() {
  local file=$1 name=$2 user=$3
  [ -f "$file" ] && return
  cat >"$file" <<KC
apiVersion: v1
kind: Config
clusters:
- name: kascade
  cluster:
    server: https://127.0.0.1:$APISERVER_PORT
    certificate-authority-data: $(base64 -w0 "$PKI/ca.crt")
users:
- name: $user
  user:
    client-certificate-data: $(base64 -w0 "$PKI/$name.crt")
    client-key-data: $(base64 -w0 "$PKI/$name.key")
contexts:
- name: kascade
  context: {cluster: kascade, user: $user}
current-context: kascade
KC
  chmod 600 "$file"
}
kubeconfig "$STATE/controller-manager.kubeconfig" controller-manager system:kube-controller-manager
kubeconfig "$STATE/scheduler.kubeconfig" scheduler system:kube-scheduler
kubeconfig "$STATE/kube-proxy.kubeconfig" kube-proxy system:kube-proxy
kubeconfig "$STATE/kubelet.kubeconfig" kubelet-client "system:node:$NODE_NAME"
kubeconfig "$KUBECONFIG_PATH" admin kubernetes-admin
echo "$STAMP" >"$PKI/.stamp"
