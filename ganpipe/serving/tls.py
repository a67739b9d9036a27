"""TLS for the gRPC endpoint: tensorflow_model_server's `--ssl_config_file`, or PEM files.

`--ssl_config_file` is TF Serving's own: an SSLConfig text proto that holds the PEM texts
themselves, and can require client certificates signed by `custom_ca` (mutual TLS):

    server_key: "-----BEGIN PRIVATE KEY-----\\n...\\n-----END PRIVATE KEY-----\\n"
    server_cert: "-----BEGIN CERTIFICATE-----\\n...\\n-----END CERTIFICATE-----\\n"
    custom_ca: "-----BEGIN CERTIFICATE-----\\n..."
    client_verify: true

`--ssl_cert_file` and `--ssl_key_file` name PEM files instead, for server-only TLS.

grpcio reports a bad key or certificate only as a failure to bind the port, so both are loaded
with Python's `ssl` module first, and a bad one is named.
"""

import dataclasses
import os
import ssl
import tempfile
from typing import Optional

from google.protobuf import text_format
import grpc

from ganpipe.serving import protos


# tensorflow.serving.SSLConfig (ssl_config.proto).
SSLConfig = protos.message_classes('tensorflow_serving/config/ssl_config.proto', {
    'SSLConfig': [('server_key', protos.STRING), ('server_cert', protos.STRING),
                  ('custom_ca', protos.STRING), ('client_verify', protos.BOOL)],
})['SSLConfig']


@dataclasses.dataclass(frozen=True)
class TlsConfig:
  """What the gRPC port needs: PEM key and certificate chain, and the CA for client certificates."""
  server_key: bytes
  server_cert: bytes
  custom_ca: Optional[bytes] = None
  client_verify: bool = False
  source: str = ''  # The flag or file it came from, for error messages ...
  pair: str = ''  # ... and how they name the key and certificate.

  def server_credentials(self) -> grpc.ServerCredentials:
    return grpc.ssl_server_credentials([(self.server_key, self.server_cert)],
                                       root_certificates=self.custom_ca,
                                       require_client_auth=self.client_verify)


def load(ssl_config_file: Optional[str], cert_file: Optional[str],
         key_file: Optional[str]) -> Optional[TlsConfig]:
  """The TLS the flags ask for, checked; None for plaintext.

  Raises:
    OSError: a file cannot be read, does not parse, or holds no usable key, certificate or CA.
  """
  if ssl_config_file:
    config = _read_ssl_config_file(ssl_config_file)
  elif cert_file:
    source = f'--ssl_cert_file {cert_file} and --ssl_key_file {key_file}'
    config = TlsConfig(_read(key_file, '--ssl_key_file'), _read(cert_file, '--ssl_cert_file'),
                       source=source, pair=source)
  else:
    return None
  _check(config)
  return config


def _read(path: str, flag: str) -> bytes:
  try:
    with open(path, 'rb') as f:
      return f.read()
  except OSError as e:
    raise OSError(f'cannot read {flag} {path}: {e.strerror}') from e


def _read_ssl_config_file(path: str) -> TlsConfig:
  source = f'--ssl_config_file {path}'
  message = SSLConfig()
  try:
    text_format.Parse(_read(path, '--ssl_config_file').decode('utf-8'), message)
  except (text_format.ParseError, UnicodeDecodeError) as e:
    raise OSError(f'{source} is not an SSLConfig text proto: {e}') from e
  if not message.server_key or not message.server_cert:
    raise OSError(f'{source} needs both server_key and server_cert (PEM texts)')
  if message.client_verify and not message.custom_ca:
    raise OSError(f'{source} sets client_verify, which needs custom_ca: the PEM certificate '
                  'of the authority that signs client certificates')
  return TlsConfig(message.server_key.encode(), message.server_cert.encode(),
                   message.custom_ca.encode() or None, message.client_verify, source,
                   pair=f'{source}: server_cert and server_key')


def _check(config: TlsConfig) -> None:
  """Raises OSError, naming the source, unless the key, certificate and CA load."""
  context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
  # load_cert_chain takes only files; these are removed at once, and only this user can read them.
  with tempfile.TemporaryDirectory(prefix='ganpipe-tls-') as folder:
    key_path, cert_path = os.path.join(folder, 'key.pem'), os.path.join(folder, 'cert.pem')
    for path, data in ((key_path, config.server_key), (cert_path, config.server_cert)):
      with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), 'wb') as f:
        f.write(data)
    try:
      context.load_cert_chain(cert_path, key_path)
    except ssl.SSLError as e:
      raise OSError(f'{config.pair} are not a PEM certificate and its private key '
                    f'({e.reason or e})') from e
  if config.custom_ca:
    try:
      context.load_verify_locations(cadata=config.custom_ca.decode('ascii', 'replace'))
    except ssl.SSLError as e:
      raise OSError(f'{config.source}: custom_ca is not a PEM certificate '
                    f'({e.reason or e})') from e
