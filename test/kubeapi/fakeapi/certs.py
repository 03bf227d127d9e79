"""Certificates (made with the openssl CLI), the token file and the kubeconfig.

Files in DIR: ca.crt/ca.key (the CA), server.crt/server.key (signed by it,
SAN IP:127.0.0.1 and DNS:localhost), wrong-ca.crt (a CA that signed nothing
here, for "wrong CA" tests), token, kubeconfig. Existing certificates are
reused, so that a test can restart the server on the same DIR (an apiserver
restart) without its clients' CA going stale. Keys are EC P-256: quick to
make, and accepted by Go's, OpenSSL's and Python's TLS.
"""

import base64
import json
import os
import secrets
import subprocess
import tempfile

_CERT_FILES = ("ca.crt", "ca.key", "server.crt", "server.key", "wrong-ca.crt")


def _openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _make_ca(d, crt, key, cn):
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-keyout", key, "-out", crt, "-days", "3650", "-subj", f"/CN={cn}",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)


def ensure_certs(d):
    if all(os.path.exists(os.path.join(d, f)) for f in _CERT_FILES):
        return
    _make_ca(d, "ca.crt", "ca.key", "shunt-fake-apiserver-ca")
    with tempfile.TemporaryDirectory(dir=d) as tmp:
        _make_ca(tmp, "wrong-ca.crt", "wrong-ca.key", "shunt-fake-wrong-ca")
        os.replace(os.path.join(tmp, "wrong-ca.crt"), os.path.join(d, "wrong-ca.crt"))
        ext = os.path.join(tmp, "server.ext")
        with open(ext, "w") as f:
            f.write("basicConstraints=CA:FALSE\n"
                    "keyUsage=critical,digitalSignature,keyEncipherment\n"
                    "extendedKeyUsage=serverAuth\n"
                    "subjectAltName=IP:127.0.0.1,DNS:localhost\n")
        csr = os.path.join(tmp, "server.csr")
        _openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                 "-nodes", "-keyout", "server.key", "-out", csr, "-subj", "/CN=kube-apiserver",
                 cwd=d)
        # A random serial instead of -CAcreateserial, which would leave ca.srl behind.
        _openssl("x509", "-req", "-in", csr, "-CA", "ca.crt", "-CAkey", "ca.key",
                 "-set_serial", str(secrets.randbits(63)), "-days", "825", "-out", "server.crt",
                 "-extfile", ext, cwd=d)
    os.chmod(os.path.join(d, "ca.key"), 0o600)
    os.chmod(os.path.join(d, "server.key"), 0o600)


def _write_atomic(path, text, mode=0o600):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.chmod(tmp, mode)
    os.replace(tmp, path)  # a reader never sees a half-written file


def new_token():
    return secrets.token_hex(24)


def write_token(d, token):
    _write_atomic(os.path.join(d, "token"), token + "\n")


def write_kubeconfig(d, port, token):
    with open(os.path.join(d, "ca.crt"), "rb") as f:
        ca_data = base64.b64encode(f.read()).decode()
    # Block-style YAML as kubectl writes it; json.dumps quotes the token as a
    # YAML double-quoted scalar, whatever characters a --token holds.
    text = f"""apiVersion: v1
kind: Config
clusters:
- name: shunt-fake
  cluster:
    server: https://127.0.0.1:{port}
    certificate-authority-data: {ca_data}
users:
- name: shunt-fake
  user:
    token: {json.dumps(token)}
contexts:
- name: shunt-fake
  context:
    cluster: shunt-fake
    user: shunt-fake
    namespace: default
current-context: shunt-fake
preferences: {{}}
"""
    _write_atomic(os.path.join(d, "kubeconfig"), text)
