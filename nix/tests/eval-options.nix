# One line per option of services.sitesfs (submodule options as sites.<name>.OPTION), sorted:
# NAME TYPE DEFAULT, the default as JSON or as its defaultText. nix/check.sh compares it with the
# list it expects. An option without a description says so.
let
  stub = import ./stub.nix;
  options = (stub.options (import ../module.nix)).services.sitesfs;

  shown =
    opt:
    if opt ? defaultText then
      opt.defaultText.text
    else if opt ? default then
      builtins.toJSON opt.default
    else
      "(required)";

  line =
    name: opt:
    "${name} ${opt.type.name} ${shown opt}"
    + (if (opt.description or "") == "" then " (NO DESCRIPTION)" else "");

  # Options of submodules nested in attrsOf (sites.<name>.repo, ...).
  lines =
    prefix: opts:
    builtins.concatLists (
      map (
        name:
        let
          opt = opts.${name};
          elem = opt.type.elemType or null;
        in
        [ (line "${prefix}${name}" opt) ]
        ++ (
          if opt.type.kind or null == "attrsOf" && elem.kind or null == "submodule" then
            lines "${prefix}${name}.<name>." elem.options
          else
            [ ]
        )
      ) (builtins.attrNames opts)
    );
in
builtins.concatStringsSep "\n" (builtins.sort builtins.lessThan (lines "" options)) + "\n"
