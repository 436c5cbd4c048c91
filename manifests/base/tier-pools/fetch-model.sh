#!/bin/sh
# The tier pools' init container: copy the model folder named by MODEL_URI (set on the
# Deployment by the pipeline's annotate step: the run's immutable, versioned model folder,
# e.g. s3://bucket/run/models/tier2/<version>) into a fresh folder, check it, and only then
# publish it at MODEL_DIR. The server container starts after this script succeeds, so it
# never sees a partial or half-replaced folder.
#
# Credentials come from files (the secret relforge-s3 mounted at S3_CREDENTIALS_DIR), not from
# the pod spec's environment.
set -eu

MODEL_DIR=${MODEL_DIR:-/models/model}
S3_CREDENTIALS_DIR=${S3_CREDENTIALS_DIR:-/var/run/secrets/relforge-s3}

if [ -z "${MODEL_URI:-}" ]; then
  echo "fetch-model: MODEL_URI is empty: this pool has no model to serve. The pipeline's" \
    "annotate step sets MODEL_URI on this Deployment to the run's versioned model folder" \
    "(s3://BUCKET/RUN/models/TIER/VERSION) before it scales the pool up from zero." >&2
  exit 64
fi
case "$MODEL_URI" in
  s3://?*/?*) ;;
  *)
    echo "fetch-model: MODEL_URI=$MODEL_URI is not an s3://BUCKET/PREFIX folder" >&2
    exit 64
    ;;
esac

for key in AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN AWS_ENDPOINT_URL AWS_DEFAULT_REGION; do
  if [ -r "$S3_CREDENTIALS_DIR/$key" ]; then
    export "$key=$(cat "$S3_CREDENTIALS_DIR/$key")"
  fi
done

parent=$(dirname "$MODEL_DIR")
mkdir -p "$parent"
# Leftovers of an attempt that was killed (the volume outlives a restarted init container).
rm -rf "$parent"/.incoming.*
staging=$(mktemp -d "$parent/.incoming.XXXXXX")

echo "fetch-model: copying $MODEL_URI into $staging"
if ! aws s3 sync --no-progress --only-show-errors "${MODEL_URI%/}/" "$staging/"; then
  rm -rf "$staging"
  echo "fetch-model: copying $MODEL_URI failed (see above); nothing was published" >&2
  exit 1
fi
if [ ! -f "$staging/config.json" ]; then
  rm -rf "$staging"
  echo "fetch-model: $MODEL_URI holds no config.json: not a model folder (a wrong URI, or" \
    "finetune-tiers has not written this tier yet)" >&2
  exit 65
fi

rm -rf "$MODEL_DIR"
mv "$staging" "$MODEL_DIR"
echo "fetch-model: $MODEL_URI is ready at $MODEL_DIR"
