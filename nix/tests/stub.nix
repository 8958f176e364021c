# Just enough of nixpkgs' `lib`, of `pkgs` and of the module system to evaluate nix/module.nix and
# nix/package.nix offline (CI has nix-instantiate, not nixpkgs). Only what those two files use:
# an evaluation that reaches for anything else fails with "attribute ... missing", which is the
# signal to add it here.
#
# Differences from the real thing, on purpose:
# - Option values are checked against their types, but definitions merge simply: attribute sets
#   recursively, lists by concatenation, equal values to one; anything else is an error. mkDefault
#   is taken at face value (no priorities).
# - A "store path" is /nix/store/HASH-NAME with HASH over the content, so a test can recompute the
#   path of the file it expects; formats.toml keeps the value next to the path for inspection.
let
  inherit (builtins)
    attrNames
    concatStringsSep
    elem
    filter
    foldl'
    functionArgs
    head
    intersectAttrs
    isAttrs
    isBool
    isFunction
    isInt
    isList
    isPath
    isString
    listToAttrs
    map
    mapAttrs
    stringLength
    substring
    toJSON
    ;

  hasPrefix = prefix: s: substring 0 (stringLength prefix) s == prefix;
  hasSuffix =
    suffix: s:
    stringLength suffix <= stringLength s
    && substring (stringLength s - stringLength suffix) (stringLength suffix) s == suffix;

  optionType = name: check: { inherit name check; };

  types = {
    str = optionType "str" isString;
    bool = optionType "bool" isBool;
    path = optionType "path" (v: isPath v || (isString v && hasPrefix "/" v));
    package = optionType "package" (v: isAttrs v && v ? outPath);
    ints = {
      unsigned = optionType "ints.unsigned" (v: isInt v && v >= 0);
      positive = optionType "ints.positive" (v: isInt v && v > 0);
      between =
        lowest: highest:
        optionType "ints.between ${toString lowest} ${toString highest}" (
          v: isInt v && v >= lowest && v <= highest
        );
    };
    enum = values: optionType "enum ${concatStringsSep "|" values}" (v: elem v values);
    nullOr = elemType: {
      name = "nullOr ${elemType.name}";
      check = v: v == null || elemType.check v;
      inherit elemType;
      kind = "nullOr";
    };
    listOf = elemType: {
      name = "listOf ${elemType.name}";
      check = isList;
      inherit elemType;
      kind = "listOf";
    };
    attrsOf = elemType: {
      name = "attrsOf ${elemType.name}";
      check = isAttrs;
      inherit elemType;
      kind = "attrsOf";
    };
    submodule = module: {
      name = "submodule";
      check = isAttrs;
      inherit (module) options;
      kind = "submodule";
    };
  };

  lib = rec {
    inherit types hasPrefix hasSuffix;
    inherit (builtins) attrNames attrValues all;

    mkOption = attrs: attrs // { _type = "option"; };
    mkEnableOption = name: mkOption {
      type = types.bool;
      default = false;
      example = true;
      description = "Whether to enable ${name}.";
    };
    literalExpression = text: { _type = "literalExpression"; inherit text; };

    mkIf = condition: content: { _type = "if"; inherit condition content; };
    mkMerge = contents: { _type = "merge"; inherit contents; };
    mkDefault = content: { _type = "override"; priority = 1000; inherit content; };

    optional = cond: x: if cond then [ x ] else [ ];
    optionalAttrs = cond: attrs: if cond then attrs else { };
    mapAttrsToList = f: attrs: map (n: f n attrs.${n}) (attrNames attrs);
    recursiveUpdate =
      lhs: rhs:
      lhs
      // mapAttrs (
        n: r:
        if lhs ? ${n} && isAttrs lhs.${n} && isAttrs r then recursiveUpdate lhs.${n} r else r
      ) rhs;
    removePrefix =
      prefix: s:
      if hasPrefix prefix s then substring (stringLength prefix) (stringLength s) s else s;
    hasInfix =
      infix: s:
      stringLength infix <= stringLength s
      && builtins.any (i: substring i (stringLength infix) s == infix) (
        builtins.genList (i: i) (stringLength s - stringLength infix + 1)
      );
    escapeShellArg = arg: "'${builtins.replaceStrings [ "'" ] [ "'\\''" ] (toString arg)}'";

    fileset = {
      unions = paths: paths;
      toSource = { root, fileset }: { inherit root; files = fileset; };
    };
    platforms.linux = [ "x86_64-linux" "aarch64-linux" ];
  };

  storePath = name: content: "/nix/store/${substring 0 32 (builtins.hashString "sha256" content)}-${name}";
  fakeDrv = name: {
    type = "derivation";
    inherit name;
    outPath = storePath name name;
  };

  # The inputs nix/package.nix takes, as nixpkgs names them.
  packageInputs = {
    inherit lib;
    stdenv.mkDerivation =
      attrs:
      attrs
      // {
        type = "derivation";
        name = "${attrs.pname}-${attrs.version}";
        outPath = storePath "${attrs.pname}-${attrs.version}" (toJSON (removeAttrs attrs [ "src" ]));
      };
  }
  // listToAttrs (
    map (name: { inherit name; value = fakeDrv name; }) [
      "cmake"
      "ninja"
      "pkg-config"
      "fuse3"
      "libgit2"
      "libssh2"
      "tomlplusplus"
      "sdbus-cpp"
      "spdlog"
      "libidn2"
      "openssl"
      "systemd"
      "grpc"
      "protobuf"
      "nlohmann_json"
    ]
  );

  pkgs = {
    formats.toml = _: {
      type = optionType "toml value" isAttrs;
      generate = name: value: {
        outPath = storePath name (toJSON value);
        inherit value;
      };
    };
    writeShellScript = storePath;
    # Like nixpkgs': pass a function only the arguments it names, and fail on one nobody has.
    callPackage =
      fn: overrides:
      let
        f = if isFunction fn then fn else import fn;
        args = intersectAttrs (functionArgs f) (packageInputs // overrides);
        missing = filter (n: !(functionArgs f).${n} && !(args ? ${n})) (attrNames (functionArgs f));
      in
      if missing != [ ] then throw "callPackage: no input named ${head missing}" else f args;
    coreutils = fakeDrv "coreutils";
    fuse3 = fakeDrv "fuse3";
    caddy = fakeDrv "caddy";
  };

  # The value of each option: the definition, checked against the type, or the default.
  resolve =
    path: options: values:
    let
      unknown = filter (n: !(options ? ${n})) (attrNames values);
    in
    if unknown != [ ] then
      throw "${path}.${head unknown}: no such option"
    else
      mapAttrs (
        n: opt:
        if values ? ${n} then
          checkValue "${path}.${n}" opt.type values.${n}
        else if opt ? default then
          opt.default
        else
          throw "${path}.${n}: used but not defined (no default)"
      ) options;

  checkValue =
    path: type: v:
    if !type.check v then
      throw "${path}: ${toJSON v} is not a ${type.name}"
    else if type.kind or null == "nullOr" then
      (if v == null then null else checkValue path type.elemType v)
    else if type.kind or null == "listOf" then
      map (checkValue "${path}.*" type.elemType) v
    else if type.kind or null == "attrsOf" then
      mapAttrs (n: checkValue "${path}.${n}" type.elemType) v
    else if type.kind or null == "submodule" then
      resolve path type.options v
    else
      v;

  # Definitions with mkIf/mkMerge/mkDefault taken out; a false mkIf leaves nothing behind.
  absent = { _type = "absent"; };
  isAbsent = v: isAttrs v && v._type or null == "absent";
  strip =
    v:
    if isAttrs v && v._type or null == "if" then
      (if v.condition then strip v.content else absent)
    else if isAttrs v && v._type or null == "merge" then
      foldl' mergeDefs { } (filter (x: !isAbsent x) (map strip v.contents))
    else if isAttrs v && v._type or null == "override" then
      strip v.content
    else if isAttrs v && !(v ? outPath) then
      let
        stripped = mapAttrs (_: strip) v;
      in
      removeAttrs stripped (filter (n: isAbsent stripped.${n}) (attrNames stripped))
    else
      v;
  mergeDefs =
    a: b:
    a
    // mapAttrs (
      n: bv:
      if !(a ? ${n}) then
        bv
      else if isList a.${n} && isList bv then
        a.${n} ++ bv
      else if isAttrs a.${n} && isAttrs bv && !(a.${n} ? outPath) && !(bv ? outPath) then
        mergeDefs a.${n} bv
      else if a.${n} == bv then
        bv
      else
        throw "conflicting definitions of ${n}"
    ) b;

  # What other modules would provide: services.caddy as nixpkgs declares it (defaults).
  otherConfig = {
    services.caddy = {
      package = pkgs.caddy;
      httpPort = 80;
      httpsPort = 443;
      enableReload = true;
    };
  };
in
{
  inherit lib pkgs;

  # The module's option declarations; `config` throws, so they must not depend on it.
  options =
    module:
    (module {
      inherit lib pkgs;
      config = throw "an option declaration reads config";
    }).options;

  # The module's config for `values` of services.sitesfs (and `others` over the stand-ins for
  # other modules' options); `{ }` when the module defines nothing.
  evalConfig =
    module:
    { values, others ? { } }:
    let
      m = module {
        inherit lib pkgs;
        config = lib.recursiveUpdate (lib.recursiveUpdate otherConfig others) {
          services.sitesfs = resolve "services.sitesfs" m.options.services.sitesfs values;
        };
      };
      result = strip m.config;
    in
    if isAbsent result then { } else result;
}
