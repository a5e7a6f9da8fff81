# Reusable home-manager modules exported as homeManagerModules.<name>.
{ }
