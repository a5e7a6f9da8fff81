# Reusable NixOS modules exported as nixosModules.<name>.
{ }
