"""`python -m ganpipe.serving`: the model server, with tensorflow_model_server's flags."""

import sys

from ganpipe.serving import serve_command

sys.exit(serve_command.main())
