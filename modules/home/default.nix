# Reusable home-manager modules, exported as the flake's homeModules.<name> (and under the
# older name homeManagerModules). `default` imports them all: each does nothing until its own
# `stackgen.*` options are set.
{
  ollama-models = ./ollama-models.nix;
  default.imports = [ ./ollama-models.nix ];
}
