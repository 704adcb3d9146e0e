# The narrow privilege path for Macha's action catalog (macha/actions/catalog.toml), as a NixOS module fragment.
#
# Macha runs as the unprivileged user `macha`. Everything privileged in the catalog is a `systemctl` call:
#   restart_service / reset_failed  ->  systemctl restart|reset-failed -- UNIT   (only the units named below)
#   journal_vacuum / nix_gc / nix_rollback  ->  systemctl start --wait -- macha-<helper>@<value>.service
#   reboot  ->  systemctl reboot (logind)
# polkit allows exactly those verbs on exactly those units for that user. There is no sudo rule.
{ config, lib, pkgs, ... }:

let
  cfg = config.services.ai-sysadmin.actions;
  helper = name: script: {
    description = "Macha catalog action: ${name} (%i)";
    serviceConfig = {
      Type = "oneshot";
      ExecStart = "${pkgs.writeShellScript "macha-${name}" script} %i";
      PrivateTmp = true;
    };
  };
in
{
  options.services.ai-sysadmin.actions = {
    restartableUnits = lib.mkOption {
      type = lib.types.listOf lib.types.str;
      default = [ ];
      example = [ "nginx.service" "postgresql.service" ];
      description = ''
        Units the macha user may restart and reset-failed through polkit. Macha's own protected list
        (sshd, systemd-*, dbus, the network, its database and broker, macha-*) is refused before this is asked.
      '';
    };
    allowReboot = lib.mkOption {
      type = lib.types.bool;
      default = false;
      description = "Let the reboot action (always approval-only: risk critical) reboot through logind.";
    };
  };

  config = {
    security.polkit.enable = true;
    security.polkit.extraConfig = ''
      polkit.addRule(function (action, subject) {
        if (subject.user != "macha") return polkit.Result.NOT_HANDLED;
        if (action.id == "org.freedesktop.systemd1.manage-units") {
          var unit = action.lookup("unit"), verb = action.lookup("verb");
          var restartable = ${builtins.toJSON cfg.restartableUnits};
          if ((verb == "restart" || verb == "reset-failed") && restartable.indexOf(unit) >= 0)
            return polkit.Result.YES;
          if (verb == "start" && (
                /^macha-journal-vacuum-size@[1-9][0-9]{0,5}[KMG]\.service$/.test(unit) ||
                /^macha-journal-vacuum-time@[1-9][0-9]{0,3}[dw]\.service$/.test(unit) ||
                /^macha-nix-gc-keep@[1-9][0-9]{0,3}\.service$/.test(unit) ||
                /^macha-nix-gc-older@[1-9][0-9]{0,3}[dw]\.service$/.test(unit) ||
                unit == "macha-nix-rollback.service"))
            return polkit.Result.YES;
        }
        if (${lib.boolToString cfg.allowReboot} && action.id == "org.freedesktop.login1.reboot")
          return polkit.Result.YES;
        return polkit.Result.NOT_HANDLED;
      });
    '';

    # The helpers take their one argument from the instance name, which polkit has already matched.
    systemd.services."macha-journal-vacuum-size@" = helper "journal-vacuum-size"
      ''exec ${pkgs.systemd}/bin/journalctl --vacuum-size="$1"'';
    systemd.services."macha-journal-vacuum-time@" = helper "journal-vacuum-time"
      ''exec ${pkgs.systemd}/bin/journalctl --vacuum-time="$1"'';
    systemd.services."macha-nix-gc-keep@" = helper "nix-gc-keep" ''
      ${config.nix.package}/bin/nix-env --profile /nix/var/nix/profiles/system --delete-generations "+$1"
      exec ${config.nix.package}/bin/nix-store --gc
    '';
    systemd.services."macha-nix-gc-older@" = helper "nix-gc-older" ''
      age="$1"
      case "$age" in *w) age="$(( ''${age%w} * 7 ))d" ;; esac  # nix-collect-garbage counts in days only
      exec ${config.nix.package}/bin/nix-collect-garbage --delete-older-than "$age"
    '';
    systemd.services."macha-nix-rollback" = {
      description = "Macha catalog action: switch to the previous NixOS generation";
      serviceConfig.Type = "oneshot";
      script = "exec ${config.system.build.nixos-rebuild}/bin/nixos-rebuild switch --rollback";
    };
  };
}
