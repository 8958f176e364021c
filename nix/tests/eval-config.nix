# Evaluates nix/module.nix's config for a few sample configurations, and nix/package.nix, through
# the stub (./stub.nix), and checks what they render. One line per check, "ok NAME" or
# "FAIL NAME: got ..., want ..."; nix/check.sh fails on any FAIL.
let
  stub = import ./stub.nix;
  inherit (stub) lib pkgs;
  inherit (builtins)
    attrNames
    concatStringsSep
    elem
    filter
    head
    isAttrs
    isString
    match
    toJSON
    tryEval
    deepSeq
    ;

  module = import ../module.nix;
  eval = values: stub.evalConfig module { inherit values; };
  evalWith = others: values: stub.evalConfig module { inherit values others; };

  package = (stub.options module).services.sitesfs.package.default;
  exe = "${package}/bin/sitesfs";
  toml = pkgs.formats.toml { };

  check = name: got: want: {
    inherit name;
    ok = got == want;
    detail = "got ${toJSON got}, want ${toJSON want}";
  };
  checkTrue = name: cond: detail: { inherit name detail; ok = cond; };

  settingsOf = c: c.environment.etc."sitesfs/sitesfs.toml".source.value;
  failedAssertions = c: map (a: a.message) (filter (a: !a.assertion) c.assertions);

  # Every key docs/configuration.md shows, as "section.key", set or commented out ("# key = ...",
  # unset by default); sections too ("ssh.pins" has only keys chosen by the user).
  docKeys =
    let
      lines = filter isString (builtins.split "\n" (builtins.readFile ../../docs/configuration.md));
      step =
        st: l:
        let
          section = match "[[]([a-z_.]+)[]]( .*)?" l;
          key = match "(# )?([a-z_]+) = .*" l;
        in
        if section != null then
          st // { prefix = "${head section}."; known = st.known ++ [ (head section) ]; }
        else if key != null then
          st // { known = st.known ++ [ "${st.prefix}${builtins.elemAt key 1}" ]; }
        else
          st;
    in
    (builtins.foldl' step { prefix = ""; known = [ ]; } lines).known;

  leafKeys =
    prefix: attrs:
    builtins.concatLists (
      map (
        n:
        let
          path = "${prefix}${n}";
        in
        if isAttrs attrs.${n} && path != "ssh.pins" then leafKeys "${path}." attrs.${n} else [ path ]
      ) (attrNames attrs)
    );
  unknownKeys = settings: filter (k: !elem k docKeys) (leafKeys "" settings);

  # Mount namespaces keep a FUSE mount from the host (see module.nix).
  namespaceOptions = [
    "ProtectSystem"
    "ProtectHome"
    "PrivateTmp"
    "PrivateDevices"
    "PrivateMounts"
    "ReadWritePaths"
    "ReadOnlyPaths"
    "InaccessiblePaths"
    "BindPaths"
    "BindReadOnlyPaths"
    "TemporaryFileSystem"
    "ProtectKernelTunables"
    "ProtectKernelModules"
    "ProtectKernelLogs"
    "ProtectControlGroups"
    "ProtectProc"
    "ProcSubset"
    "DynamicUser"
    "StateDirectory"
  ];
  namespaced = sc: filter (o: sc ? ${o}) namespaceOptions;

  # ---- enable = true and nothing else
  minimal = eval { enable = true; };
  minimalService = minimal.systemd.services.sitesfs;
  minimalConfigFile = minimal.environment.etc."sitesfs/sitesfs.toml".source;

  # ---- most options set
  full = eval {
    enable = true;
    pollInterval = 300;
    hostKeyPolicy = "strict";
    hostKeyPins."github.com:22" = "SHA256:+DiY3wvvV6TuJJhbpZisF/zLDA0zPMSvHdkr4UvCOqU";
    loadCredentials = [ "blog:/etc/sitesfs/keys/blog" ];
    monitoringGroup = "monitoring";
    watchdogSec = 30;
    caddyIntegration = false;
    storeBackend = "etcd";
    etcdEndpoints = [ "https://10.0.0.1:2379" ];
    labels = [ "eu" ];
    settings = {
      log_level = "debug";
      store.user = "sitesfs";
      metrics.textfile = "/var/lib/node_exporter/sitesfs.prom";
      reconcile.workers = 2;
      keys.command = [
        "/run/current-system/sw/bin/dota"
        "get"
      ];
    };
    sites = {
      blog = {
        repo = "https://github.com/user/blog";
        domain = "blog.example.com";
      };
      "docs.example" = {
        repo = "git@github.com:user/docs.git";
        domain = "docs.example.com www.docs.example.com";
        branch = "gh-pages";
        path = "public";
        deployKeyRef = "cmd:docs";
      };
    };
  };
  fullService = full.systemd.services.sitesfs;
  fullSettings = settingsOf full;
  seedPre = builtins.tail fullService.serviceConfig.ExecStartPre;
  importScript = head (builtins.split " " (head seedPre));
  seed = name: value: toml.generate "sitesfs-seed-${name}.toml" { sites.${name} = value; };
  monitorConfig = toml.generate "sitesfs-monitor.toml" (
    lib.recursiveUpdate (builtins.removeAttrs fullSettings [ "metrics" ]) {
      filesystem = {
        group = "monitoring";
        dir_mode = "0750";
        file_mode = "0640";
      };
    }
  );
  monitor = full.systemd.services.sitesfs-monitor;

  # ---- definitions the module must refuse: by an assertion (message start) or a type error
  refusedBy = values: prefix: others: {
    name = "refused by assertion: ${prefix}";
    ok =
      let
        failed = failedAssertions (evalWith others ({ enable = true; } // values));
      in
      builtins.length failed == 1 && lib.hasPrefix prefix (head failed);
    detail = "got ${toJSON (failedAssertions (evalWith others ({ enable = true; } // values)))}, want one starting with ${toJSON prefix}";
  };
  typeError = values: {
    name = "type error for ${toJSON values}";
    ok = !(tryEval (deepSeq (eval ({ enable = true; } // values)) true)).success;
    detail = "evaluated without an error";
  };

  # Sources, configured files and man pages CMakeLists.txt names, and whether the package's source
  # holds each (as itself or inside a directory it holds).
  cmakeLists = builtins.readFile ../../CMakeLists.txt;
  cmakePaths = map head (
    filter builtins.isList (builtins.split "([a-z_]+/[A-Za-z0-9_./-]+[.](cpp|in|[1-8]))" cmakeLists)
  );
  sourceEntries = map (
    p: lib.removePrefix "${toString package.src.root}/" (toString p)
  ) package.src.files;
  inSource = p: builtins.any (e: e == p || lib.hasPrefix "${e}/" p) sourceEntries;

  checks = [
    (check "disabled: the module defines nothing" (eval { }) { })
    (check "minimal: assertions hold" (failedAssertions minimal) [ ])
    (check "minimal: Type=notify" minimalService.serviceConfig.Type "notify")
    (check "minimal: ExecStart" minimalService.serviceConfig.ExecStart
      "${exe} -f --config ${minimalConfigFile} /sites"
    )
    (check "minimal: ExecStartPre makes the mountpoint only" minimalService.serviceConfig.ExecStartPre [
      "-${pkgs.coreutils}/bin/mkdir -p /sites"
    ])
    (check "minimal: rendered config" (settingsOf minimal) {
      state_dir = "/var/lib/sitesfs";
      data_dir = "/var/lib/sites";
      proxy = {
        file = "/var/lib/sitesfs-caddy/sites.conf";
        caddy = "${pkgs.caddy}/bin/caddy";
      };
      reload = {
        mode = "systemd";
        unit = "caddy.service";
      };
      reconcile.poll_interval = 60;
      ssh = {
        host_key_policy = "accept-new";
        pins = { };
      };
      health.tls_address = "127.0.0.1:443";
    })
    (check "minimal: every config key is in docs/configuration.md" (unknownKeys (settingsOf minimal)) [ ])
    (check "minimal: Caddy imports the generated file" minimal.services.caddy {
      enable = true;
      extraConfig = "import /var/lib/sitesfs-caddy/sites.conf\n";
    })
    (check "minimal: directories" minimal.systemd.tmpfiles.rules [
      "d /var/lib/sitesfs 0700 root root - -"
      "d /var/lib/sitesfs/sites 0700 root root - -"
      "d /var/lib/sites 0755 root root - -"
      "d /var/lib/sitesfs-caddy 0755 root root - -"
      "f /var/lib/sitesfs-caddy/sites.conf 0644 root root - -"
    ])
    (check "minimal: environment" minimalService.environment {
      HOME = "/var/lib/sitesfs";
      XDG_CONFIG_HOME = "/run/sitesfs/config";
      XDG_DATA_HOME = "/run/sitesfs/data";
    })
    (check "minimal: ordering" [ minimalService.wants minimalService.after ] [
      [ "network-online.target" "caddy.service" ]
      [ "network-online.target" "caddy.service" ]
    ])
    (check "minimal: no mount namespace (the mount must reach the host)" (namespaced minimalService.serviceConfig) [ ])
    (check "minimal: capabilities" minimalService.serviceConfig.CapabilityBoundingSet [
      "CAP_SYS_ADMIN"
      "CAP_DAC_READ_SEARCH"
    ])
    (check "minimal: only /dev/fuse" [
      minimalService.serviceConfig.DevicePolicy
      minimalService.serviceConfig.DeviceAllow
    ] [ "closed" [ "/dev/fuse rw" ] ])
    (check "minimal: no credentials, no watchdog, no monitor" [
      minimalService.serviceConfig.LoadCredential
      (minimalService.serviceConfig ? WatchdogSec)
      (minimal.systemd.services ? sitesfs-monitor)
      (minimal ? users)
    ] [ [ ] false false false ])

    (check "full: assertions hold" (failedAssertions full) [ ])
    (check "full: every config key is in docs/configuration.md" (unknownKeys fullSettings) [ ])
    (check "full: settings laid over the options" [
      fullSettings.log_level
      fullSettings.metrics
      fullSettings.reconcile
      fullSettings.keys
      fullSettings.ssh
      fullSettings.store
    ] [
      "debug"
      { textfile = "/var/lib/node_exporter/sitesfs.prom"; }
      {
        poll_interval = 300;
        workers = 2;
      }
      {
        dir = "/run/credentials/sitesfs.service";
        command = [
          "/run/current-system/sw/bin/dota"
          "get"
        ];
      }
      {
        host_key_policy = "strict";
        pins."github.com:22" = "SHA256:+DiY3wvvV6TuJJhbpZisF/zLDA0zPMSvHdkr4UvCOqU";
      }
      {
        backend = "etcd";
        endpoints = [ "https://10.0.0.1:2379" ];
        labels = [ "eu" ];
        user = "sitesfs";
      }
    ])
    (check "full: no caddy integration, no TLS address from it" [
      (full ? services)
      (fullSettings ? health)
    ] [ false false ])
    (check "full: LoadCredential and WatchdogSec" [
      fullService.serviceConfig.LoadCredential
      fullService.serviceConfig.WatchdogSec
    ] [ [ "blog:/etc/sitesfs/keys/blog" ] 30 ])
    (checkTrue "full: the import script" (lib.hasPrefix "/nix/store/" importScript
      && lib.hasSuffix "-sitesfs-import-seed" importScript
    ) "got ${importScript}")
    (check "full: one import per site, with its seed file" seedPre [
      "${importScript} blog ${
        seed "blog" {
          domain = "blog.example.com";
          repo = "https://github.com/user/blog";
          branch = "";
        }
      }"
      "${importScript} docs.example ${
        seed "docs.example" {
          domain = "docs.example.com www.docs.example.com";
          repo = "git@github.com:user/docs.git";
          branch = "gh-pages";
          path = "public";
          deploy_key = "docs";
        }
      }"
    ])
    (check "full: state dir opened to the monitoring group" full.systemd.tmpfiles.rules [
      "d /var/lib/sitesfs 2750 root monitoring - -"
      "d /var/lib/sitesfs/sites 2750 root monitoring - -"
      "d /var/lib/sites 0755 root root - -"
      "d /var/lib/sitesfs-caddy 0755 root root - -"
      "f /var/lib/sitesfs-caddy/sites.conf 0644 root root - -"
      "Z /var/lib/sitesfs/sites - - monitoring - -"
    ])
    (check "full: monitor unit" [
      monitor.serviceConfig.Type
      monitor.serviceConfig.User
      monitor.serviceConfig.Group
      monitor.serviceConfig.ExecStart
      monitor.serviceConfig.ExecStartPre
    ] [
      "notify"
      "sitesfs-monitor"
      "monitoring"
      "${exe} -f -o ro,allow_other --config ${monitorConfig} /run/sitesfs-monitor"
      "-+${pkgs.coreutils}/bin/install -d -o sitesfs-monitor -g monitoring -m 0750 /run/sitesfs-monitor"
    ])
    (check "full: monitor unit has no mount namespace and no NoNewPrivileges" [
      (namespaced monitor.serviceConfig)
      (monitor.serviceConfig ? NoNewPrivileges)
    ] [ [ ] false ])
    (check "full: monitoring user, group and allow_other" [
      full.users.users.sitesfs-monitor.group
      full.users.groups
      full.programs.fuse.userAllowOther
    ] [ "monitoring" { monitoring = { }; } true ])

    (check "keysDir wins over the credentials dir"
      (settingsOf (eval {
        enable = true;
        keysDir = "/run/agenix";
        loadCredentials = [ "blog:/etc/sitesfs/keys/blog" ];
      })).keys
      { dir = "/run/agenix"; }
    )

    (refusedBy { sites."Blog!" = { repo = "user/blog"; domain = "blog.example.com"; }; } "services.sitesfs.sites: a site name" { })
    (refusedBy {
      sites.blog = {
        repo = "user/blog";
        domain = "blog.example.com";
        deployKeyRef = "ssh:blog";
      };
    } "services.sitesfs.sites.<name>.deployKeyRef: write cmd:NAME or file:NAME" { })
    (refusedBy {
      sites.blog = {
        repo = "user/blog";
        domain = "blog.example.com";
        deployKeyRef = "cmd:.hidden";
      };
    } "services.sitesfs.sites.<name>.deployKeyRef: the name after cmd: or file:" { })
    (refusedBy { loadCredentials = [ "blog" ]; } "services.sitesfs.loadCredentials" { })
    (refusedBy { hostKeyPins."github.com" = "SHA256:x"; } "services.sitesfs.hostKeyPins" { })
    (refusedBy { settings.state_dir = "/srv/sitesfs"; } "services.sitesfs.settings" { })
    (refusedBy {
      monitoringGroup = "monitoring";
      monitoringMountPoint = "/sites";
    } "services.sitesfs.monitoringMountPoint" { })
    (refusedBy { } "services.sitesfs reloads caddy.service" { services.caddy.enableReload = false; })
    (typeError { hostKeyPolicy = "lax"; })
    (typeError { pollInterval = -1; })
    (typeError { pollInterval = 31536001; })
    (typeError { mountPoint = "sites"; })
    (typeError { sites.blog.domain = "blog.example.com"; })
    (typeError { sites.blog = { repo = "user/blog"; domain = "blog.example.com"; branches = "main"; }; })

    (check "package: names" [
      package.pname
      package.meta.mainProgram
      package.doCheck
    ] [ "sitesfs" "sitesfs" false ])
    (check "package: version is CMakeLists.txt's" package.version (
      head (head (filter builtins.isList (builtins.split "project\\(sitesfs VERSION ([0-9.]+)" cmakeLists)))
    ))
    (check "package: the source holds every file CMakeLists.txt names" (
      filter (p: !inSource p) cmakePaths
    ) [ ])
    (check "package: the source holds CMakeLists.txt" (inSource "CMakeLists.txt") true)
  ];
in
concatStringsSep "\n" (
  map (c: if c.ok then "ok   ${c.name}" else "FAIL ${c.name}: ${c.detail}") checks
)
+ "\n"
