# Pre-fetch model files (e.g. llama.cpp GGUF weights) before the service that reads them
# starts: one oneshot unit per file downloads it once, checks its sha256, and moves it into
# place atomically. nixpkgs has no such option; `services.llama-cpp.model` expects the file
# to exist. Part of stackgen; copied into each rendered tree.
{ config, lib, pkgs, ... }:
let
  inherit (lib) mkOption types;
  cfg = config.stackgen.modelFetch;

  # Hugging Face URLs go through the configured endpoint (a mirror such as hf-mirror.com).
  effectiveUrl =
    url:
    let
      hf = "https://huggingface.co/";
    in
    if cfg.huggingfaceEndpoint != null && lib.hasPrefix hf url then
      "${lib.removeSuffix "/" cfg.huggingfaceEndpoint}/${lib.removePrefix hf url}"
    else
      url;

  fileType = types.submodule {
    options = {
      url = mkOption {
        type = types.str;
        description = "Where to download the file from (http or https).";
      };
      sha256 = mkOption {
        type = types.nullOr (types.strMatching "[0-9a-f]{64}");
        default = null;
        description = "Expected sha256 (hex). Without it the download is not verified.";
      };
      path = mkOption {
        type = types.strMatching "/.+";
        description = "Absolute path the file is placed at.";
      };
      requiredBy = mkOption {
        type = types.listOf types.str;
        default = [ ];
        example = [ "llama-cpp.service" ];
        description = "Units that need the file: they start only after it is in place.";
      };
    };
  };

  # systemd expands `%` specifiers in Description= (NixOS writes it as it is): doubled, literal.
  unitText = lib.replaceStrings [ "%" ] [ "%%" ];

  # Every value in the script below is spliced in through lib.escapeShellArg: the unit runs
  # as root, and a URL may hold `$(...)`, backquotes or `;` (all legal URL characters).
  # curl gets --globoff: without it `[1-3]` or `{a,b}` in a URL fetch several URLs.
  unit = name: file: {
    description = unitText "Fetch ${file.path}";
    wants = [ "network-online.target" ];
    after = [ "network-online.target" ];
    before = file.requiredBy;
    requiredBy = file.requiredBy;
    path = [
      pkgs.coreutils
      pkgs.curl
    ];
    serviceConfig = {
      Type = "oneshot";
      RemainAfterExit = true;
      UMask = "0022";
    };
    script =
      let
        target = lib.escapeShellArg file.path;
        verify = f: "echo ${lib.escapeShellArg file.sha256}'  '${f} | sha256sum --check --status";
      in
      ''
        set -euo pipefail
        if [ -e ${target} ]${lib.optionalString (file.sha256 != null) " && ${verify target}"}; then
          exit 0
        fi
        mkdir -p "$(dirname ${target})"
        curl --globoff --fail --location --retry 5 --continue-at - \
          --output ${target}.part ${lib.escapeShellArg (effectiveUrl file.url)}
      ''
      + lib.optionalString (file.sha256 != null) ''
        if ! ${verify "${target}.part"}; then
          echo ${lib.escapeShellArg "sha256 mismatch for ${file.url}; removing the download"} >&2
          rm -f ${target}.part
          exit 1
        fi
      ''
      + ''
        mv ${target}.part ${target}
      '';
  };
in
{
  options.stackgen.modelFetch = {
    huggingfaceEndpoint = mkOption {
      type = types.nullOr types.str;
      default = null;
      example = "https://hf-mirror.com";
      description = "Download https://huggingface.co/ URLs from this endpoint instead.";
    };
    files = mkOption {
      type = types.attrsOf fileType;
      default = { };
      description = "Files to download before the units in their `requiredBy` start.";
    };
  };

  config = {
    systemd.services = lib.mapAttrs' (
      name: file: lib.nameValuePair "stackgen-fetch-${name}" (unit name file)
    ) cfg.files;
    warnings = lib.mapAttrsToList (
      name: file: "stackgen.modelFetch.files.${name} has no sha256: ${file.url} is downloaded unverified"
    ) (lib.filterAttrs (_: file: file.sha256 == null) cfg.files);
  };
}
