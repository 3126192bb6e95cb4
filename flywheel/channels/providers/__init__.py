"""Provider adapters (SMS, WeCom, WeChat Official Account, App push).

Each module registers its channel with ``@register``; :mod:`flywheel.channels.catalog` imports
them all. Channel names: ``sms`` (Aliyun or Tencent Cloud, chosen by the account's
``provider``), ``wecom_app``, ``wecom_robot``, ``wecom_customer``, ``wechat_template``,
``wechat_subscribe``, ``app_push``.
"""
